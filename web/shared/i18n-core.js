// The helpers of a page's string tables, shared by the softphone
// (/admin/js/i18n.js) and the operator console (/console/js/i18n.js); each
// page keeps its own table. Served at /shared/i18n-core.js.

/**
 * The language functions of one table of strings by language; en-US is the
 * fallback of an unknown language and of a key a language lacks.
 * @param {Record<string, Record<string, string>>} strings
 */
export function makeI18n(strings) {
  const langs = Object.keys(strings);
  let current = 'en-US';
  return {
    LANGS: langs,
    /** @param {unknown} lang */
    setLang(lang) {
      current = typeof lang === 'string' && strings[lang] ? lang : 'en-US';
      document.documentElement.lang = current;
      return current;
    },
    lang() {
      return current;
    },
    /** @param {string} key */
    t(key) {
      return strings[current][key] ?? strings['en-US'][key] ?? key;
    },
    /** For the tests: every language must have every key of en-US. */
    missingKeys() {
      const base = Object.keys(strings['en-US']);
      /** @type {Record<string, string[]>} */
      const out = {};
      for (const l of langs) out[l] = base.filter((k) => !(k in strings[l]));
      return out;
    },
  };
}
