// Building the console's DOM: elements from data, text always as text
// (never HTML: names, numbers and error messages come from the server and,
// through it, from carriers and host pages).

import { t } from './i18n.js';

/** @param {string} id */
export function el(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} is missing`);
  return e;
}

/**
 * An element with attributes and children; text goes in as text, never HTML.
 * @param {string} tag
 * @param {Record<string, string | boolean | ((e: Event) => void)>} [attrs]
 * @param {(Node | string | null)[]} [children]
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === 'function') e.addEventListener(k, v);
    else if (k === 'text') e.textContent = String(v);
    else if (v === true) e.setAttribute(k, '');
    else if (v !== false) e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null) e.append(c);
  return e;
}

/**
 * A table with translated headings, or one row saying `empty`.
 * @param {string[]} heads @param {Node[]} rows @param {string} id @param {string} empty
 */
export function table(heads, rows, id, empty) {
  const body = rows.length ? rows : [h('tr', {}, [h('td', { class: 'empty', colspan: String(heads.length), text: t(empty) })])];
  return h('table', { id }, [
    h('thead', {}, [h('tr', {}, heads.map((k) => h('th', { text: t(k) })))]),
    h('tbody', {}, body),
  ]);
}
