//! What a waiting caller is told: their place in the queue and the
//! expected wait, in the three languages, from recorded prompts (8 kHz
//! G.711 mu-law, made with espeak-ng by `scripts/make-prompts.py` and
//! embedded here: no file, network or speech engine at run time).
//!
//! A sentence is a list of clips: "You are caller number" + the number
//! (1-20, else "more than twenty") + "in the queue.", then, when the wait
//! can be told, "Your expected wait is about" + the minutes + "minutes.",
//! or "... less than a minute." The switchboard decides when and with
//! which figures; this only puts the words in order.

/// A language the prompts are recorded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    EnUs,
    EsMx,
    ZhCn,
}

impl Lang {
    /// From the tag the admin API and the softphone use.
    pub fn parse(tag: &str) -> Option<Lang> {
        match tag {
            "en-US" => Some(Lang::EnUs),
            "es-MX" => Some(Lang::EsMx),
            "zh-CN" => Some(Lang::ZhCn),
            _ => None,
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Lang::EnUs => "en-US",
            Lang::EsMx => "es-MX",
            Lang::ZhCn => "zh-CN",
        }
    }

    fn clips(self) -> &'static Clips {
        match self {
            Lang::EnUs => &EN_US,
            Lang::EsMx => &ES_MX,
            Lang::ZhCn => &ZH_CN,
        }
    }
}

/// One language's recorded words (mu-law bytes).
struct Clips {
    you_are: &'static [u8],
    in_queue: &'static [u8],
    wait_about: &'static [u8],
    minutes: &'static [u8],
    wait_short: &'static [u8],
    more_than_20: &'static [u8],
    /// 1 to 20.
    numbers: [&'static [u8]; 20],
}

macro_rules! clips {
    ($lang:literal) => {
        Clips {
            you_are: include_bytes!(concat!("../prompts/", $lang, "/you_are.ul")),
            in_queue: include_bytes!(concat!("../prompts/", $lang, "/in_queue.ul")),
            wait_about: include_bytes!(concat!("../prompts/", $lang, "/wait_about.ul")),
            minutes: include_bytes!(concat!("../prompts/", $lang, "/minutes.ul")),
            wait_short: include_bytes!(concat!("../prompts/", $lang, "/wait_short.ul")),
            more_than_20: include_bytes!(concat!("../prompts/", $lang, "/more_than_20.ul")),
            numbers: [
                include_bytes!(concat!("../prompts/", $lang, "/n1.ul")),
                include_bytes!(concat!("../prompts/", $lang, "/n2.ul")),
                include_bytes!(concat!("../prompts/", $lang, "/n3.ul")),
                include_bytes!(concat!("../prompts/", $lang, "/n4.ul")),
                include_bytes!(concat!("../prompts/", $lang, "/n5.ul")),
                include_bytes!(concat!("../prompts/", $lang, "/n6.ul")),
                include_bytes!(concat!("../prompts/", $lang, "/n7.ul")),
                include_bytes!(concat!("../prompts/", $lang, "/n8.ul")),
                include_bytes!(concat!("../prompts/", $lang, "/n9.ul")),
                include_bytes!(concat!("../prompts/", $lang, "/n10.ul")),
                include_bytes!(concat!("../prompts/", $lang, "/n11.ul")),
                include_bytes!(concat!("../prompts/", $lang, "/n12.ul")),
                include_bytes!(concat!("../prompts/", $lang, "/n13.ul")),
                include_bytes!(concat!("../prompts/", $lang, "/n14.ul")),
                include_bytes!(concat!("../prompts/", $lang, "/n15.ul")),
                include_bytes!(concat!("../prompts/", $lang, "/n16.ul")),
                include_bytes!(concat!("../prompts/", $lang, "/n17.ul")),
                include_bytes!(concat!("../prompts/", $lang, "/n18.ul")),
                include_bytes!(concat!("../prompts/", $lang, "/n19.ul")),
                include_bytes!(concat!("../prompts/", $lang, "/n20.ul")),
            ],
        }
    };
}

static EN_US: Clips = clips!("en-US");
static ES_MX: Clips = clips!("es-MX");
static ZH_CN: Clips = clips!("zh-CN");

/// The highest number said as such; above it, "more than twenty".
pub const HIGHEST: u32 = 20;

/// The clips of "you are caller number `position` in the queue", then,
/// with `minutes` (the expected wait, rounded up; 0: under a minute), the
/// wait; in order, mu-law.
pub fn sentence(lang: Lang, position: u32, minutes: Option<u32>) -> Vec<&'static [u8]> {
    let c = lang.clips();
    let number = |n: u32| match n {
        1..=HIGHEST => c.numbers[n as usize - 1],
        _ => c.more_than_20,
    };
    let mut out = vec![c.you_are, number(position.max(1)), c.in_queue];
    match minutes {
        None => {}
        Some(0) => out.push(c.wait_short),
        Some(m) => out.extend([c.wait_about, number(m), c.minutes]),
    }
    out
}

/// The sentence as 8 kHz linear samples: 120 ms of silence between its
/// two halves, none between words (each clip keeps 40 ms at its ends).
pub fn samples(lang: Lang, position: u32, minutes: Option<u32>) -> Vec<i16> {
    let parts = sentence(lang, position, minutes);
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum::<usize>() + 960);
    for (i, p) in parts.iter().enumerate() {
        if i == 3 {
            out.extend(std::iter::repeat_n(0, 960));
        }
        out.extend(p.iter().map(|&u| crate::g711::ulaw_to_linear(u)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clip_of_every_language_is_there_and_speaks() {
        for lang in [Lang::EnUs, Lang::EsMx, Lang::ZhCn] {
            assert_eq!(Lang::parse(lang.tag()), Some(lang));
            let c = lang.clips();
            let all = [
                c.you_are,
                c.in_queue,
                c.wait_about,
                c.minutes,
                c.wait_short,
                c.more_than_20,
            ]
            .into_iter()
            .chain(c.numbers);
            for clip in all {
                // At least a syllable (0.15 s), at most 6 s, and not silence.
                assert!(
                    (1_200..48_000).contains(&clip.len()),
                    "{lang:?}: {}",
                    clip.len()
                );
                let peak = clip
                    .iter()
                    .map(|&u| crate::g711::ulaw_to_linear(u).unsigned_abs())
                    .max()
                    .unwrap();
                assert!(peak > 3_000, "{lang:?}: a clip that is near silence");
            }
        }
        assert_eq!(Lang::parse("fr-FR"), None);
    }

    #[test]
    fn sentences_put_the_words_in_order() {
        let c = Lang::EnUs.clips();
        assert_eq!(
            sentence(Lang::EnUs, 3, None),
            vec![c.you_are, c.numbers[2], c.in_queue]
        );
        assert_eq!(
            sentence(Lang::EnUs, 21, Some(0)),
            vec![c.you_are, c.more_than_20, c.in_queue, c.wait_short]
        );
        assert_eq!(
            sentence(Lang::EnUs, 1, Some(20)),
            vec![
                c.you_are,
                c.numbers[0],
                c.in_queue,
                c.wait_about,
                c.numbers[19],
                c.minutes
            ]
        );
        let z = Lang::ZhCn.clips();
        assert_eq!(
            sentence(Lang::ZhCn, 2, Some(45)),
            vec![
                z.you_are,
                z.numbers[1],
                z.in_queue,
                z.wait_about,
                z.more_than_20,
                z.minutes
            ]
        );
        // Linear samples: the parts, and a pause between the sentences.
        let s = samples(Lang::EsMx, 2, Some(3));
        let words: usize = sentence(Lang::EsMx, 2, Some(3))
            .iter()
            .map(|p| p.len())
            .sum();
        assert_eq!(s.len(), words + 960);
        assert_eq!(
            samples(Lang::EsMx, 2, None).len(),
            words - {
                let e = Lang::EsMx.clips();
                e.wait_about.len() + e.numbers[2].len() + e.minutes.len()
            }
        );
    }
}
