// Berth console: progressive enhancement only. Every page works without this file (forms post,
// links navigate); it adds copy buttons, confirmations before destructive forms and "select all".
// Loaded as a module from this origin (the Content-Security-Policy allows no inline script).

/** Copies text, with a fallback for plain-HTTP origins where navigator.clipboard is absent. */
async function copy(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.className = 'offscreen';
  document.body.append(area);
  area.select();
  document.execCommand('copy');
  area.remove();
}

document.addEventListener('click', async (event) => {
  const button = event.target instanceof Element ? event.target.closest('button[data-copy]') : null;
  if (!button) return;
  event.preventDefault();
  const label = button.textContent;
  try {
    await copy(button.getAttribute('data-copy') ?? '');
    button.textContent = 'Copied';
  } catch {
    button.textContent = 'Copy failed';
  }
  button.setAttribute('aria-live', 'polite');
  setTimeout(() => {
    button.textContent = label;
  }, 1500);
});

// A form (or its submit button) with data-confirm asks before it is sent.
document.addEventListener('submit', (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  const submitter = event.submitter;
  const question = submitter?.getAttribute('data-confirm') ?? form.getAttribute('data-confirm');
  if (question && !window.confirm(question)) event.preventDefault();
});

// <input type="checkbox" data-select-all="NAME"> checks or clears the form's NAME checkboxes.
document.addEventListener('change', (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement) || !box.hasAttribute('data-select-all')) return;
  const name = box.getAttribute('data-select-all');
  for (const other of box.form?.querySelectorAll('input[type="checkbox"]') ?? []) {
    if (other instanceof HTMLInputElement && other.name === name) other.checked = box.checked;
  }
});
