/**
 * HTML built by tagged templates that escape every interpolated value unless it is already
 * markup made here (`SafeHtml`). Repository names, tags, policy text and finding descriptions
 * are attacker-controlled, so escaping is the default and the only way out is `html` itself:
 *
 *   html`<td>${repositoryName}</td>`            // text, escaped
 *   html`<ul>${items.map((i) => html`<li>${i}</li>`)}</ul>`   // nested markup, kept
 *
 * Values are always placed in text or in double-quoted attribute values, where escaping
 * `& < > " '` is enough; never in a script, a style or an unquoted attribute.
 */
export class SafeHtml {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  toString(): string {
    return this.text;
  }
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

export type Fragment = SafeHtml | string | number | boolean | null | undefined | readonly Fragment[];

function render(value: Fragment): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof SafeHtml) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: Fragment[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new SafeHtml(out);
}

/** Joins fragments (e.g. optional attributes) into one piece of markup. */
export function join(parts: readonly Fragment[]): SafeHtml {
  return new SafeHtml(render(parts));
}
