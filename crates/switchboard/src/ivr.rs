//! Menus (IVR) per DID: a call to a DID routed to a menu is answered at
//! once and hears the DID's prompt; the caller presses a digit (RFC 4733
//! from the carrier) and the call goes to that option's group, with the
//! skill the option requires, as a call routed there directly would
//! (ring, queue, overflow). A digit the menu does not have is ignored
//! until [`WRONG_DIGITS_LIMIT`] of them; then, as when the caller chose
//! nothing within the menu's timeout, the menu's default option is taken,
//! or, with none, the call ends (BYE).

/// The most options a menu may have (one per key of a phone's pad).
pub const MAX_OPTIONS: usize = 12;

/// The longest a caller may be given to choose.
pub const MENU_TIMEOUT_LIMIT_SECS: u32 = 300;

/// Digits the menu does not have that a caller may press before the menu
/// gives up on them.
pub const WRONG_DIGITS_LIMIT: u32 = 3;

/// Where one option sends the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuChoice {
    pub group_no: String,
    /// The skill an agent must have to be offered the call.
    pub skill: Option<String>,
}

/// A DID's menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    /// By the digit that picks it (0-9, * or #), each digit once.
    pub options: Vec<(char, MenuChoice)>,
    /// How long the caller has to choose, from the answer.
    pub timeout_secs: u32,
    /// The option taken when the caller chose nothing in time (or kept
    /// pressing digits the menu does not have); none: the call ends.
    pub default: Option<char>,
}

/// Is `d` a key of a phone's pad?
pub fn is_key(d: char) -> bool {
    d.is_ascii_digit() || d == '*' || d == '#'
}

impl Menu {
    /// The option of this digit, if the menu has one.
    pub fn choice(&self, digit: char) -> Option<&MenuChoice> {
        self.options
            .iter()
            .find(|(d, _)| *d == digit)
            .map(|(_, c)| c)
    }

    /// The menu is one a caller can use, or why not (in the admin API's
    /// words; group names and skills are checked by the caller).
    pub fn check(&self) -> Result<(), &'static str> {
        if self.options.is_empty() || self.options.len() > MAX_OPTIONS {
            return Err("a menu has 1 to 12 options");
        }
        for (i, (d, _)) in self.options.iter().enumerate() {
            if !is_key(*d) {
                return Err("an option's key is a digit 0-9, * or #");
            }
            if self.options[..i].iter().any(|(e, _)| e == d) {
                return Err("each key picks one option");
            }
        }
        if !(1..=MENU_TIMEOUT_LIMIT_SECS).contains(&self.timeout_secs) {
            return Err("timeoutSecs is 1 to 300");
        }
        if self.default.is_some_and(|d| self.choice(d).is_none()) {
            return Err("the default is one of the menu's keys");
        }
        Ok(())
    }
}

/// A call in a menu: what it may choose and how often it chose wrong.
#[derive(Debug, Clone)]
pub(crate) struct InMenu {
    pub menu: Menu,
    /// The DID called (whose prompt plays).
    pub did: String,
    pub wrong: u32,
}

/// What a caller's digit does to a call in a menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pressed {
    /// The call goes to this option.
    Chosen(MenuChoice),
    /// Not an option: ignored.
    Wrong,
    /// Too many digits that are not options: the default option, or none
    /// (the call ends).
    GaveUp(Option<MenuChoice>),
}

impl InMenu {
    pub fn press(&mut self, digit: char) -> Pressed {
        if let Some(c) = self.menu.choice(digit) {
            return Pressed::Chosen(c.clone());
        }
        self.wrong += 1;
        if self.wrong >= WRONG_DIGITS_LIMIT {
            Pressed::GaveUp(self.fallback())
        } else {
            Pressed::Wrong
        }
    }

    /// The default option, if the menu has one.
    pub fn fallback(&self) -> Option<MenuChoice> {
        self.menu.default.and_then(|d| self.menu.choice(d)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn menu() -> Menu {
        let c = |g: &str| MenuChoice {
            group_no: g.into(),
            skill: None,
        };
        Menu {
            options: vec![('1', c("G001")), ('2', c("G002"))],
            timeout_secs: 10,
            default: Some('1'),
        }
    }

    #[test]
    fn menus_are_checked() {
        assert_eq!(menu().check(), Ok(()));
        let mut m = menu();
        m.options.push(('1', m.options[1].1.clone()));
        assert!(m.check().is_err());
        let mut m = menu();
        m.options[0].0 = 'a';
        assert!(m.check().is_err());
        let mut m = menu();
        m.default = Some('9');
        assert!(m.check().is_err());
        let mut m = menu();
        m.timeout_secs = 0;
        assert!(m.check().is_err());
        m.timeout_secs = MENU_TIMEOUT_LIMIT_SECS + 1;
        assert!(m.check().is_err());
        let mut m = menu();
        m.options.clear();
        assert!(m.check().is_err());
        let mut m = menu();
        let keys = "0123456789*#";
        m.options = keys.chars().map(|d| (d, m.options[0].1.clone())).collect();
        assert_eq!(m.check(), Ok(()));
        m.options.push(('5', m.options[0].1.clone()));
        assert!(m.check().is_err());
    }

    #[test]
    fn wrong_digits_give_up_on_the_third() {
        let mut m = InMenu {
            menu: menu(),
            did: "1".into(),
            wrong: 0,
        };
        assert_eq!(m.press('7'), Pressed::Wrong);
        assert_eq!(m.press('#'), Pressed::Wrong);
        assert_eq!(
            m.press('9'),
            Pressed::GaveUp(Some(MenuChoice {
                group_no: "G001".into(),
                skill: None
            }))
        );
        m.menu.default = None;
        m.wrong = 0;
        assert!(matches!(m.press('2'), Pressed::Chosen(c) if c.group_no == "G002"));
    }
}
