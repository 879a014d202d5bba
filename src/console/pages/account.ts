import { ApiError } from '../api.ts';
import type { PageContext, PageResult, Routes } from '../console.ts';
import { html } from '../html.ts';
import { csrfField, when, type Notice } from '../layout.ts';
import type { Sessions } from '../sessions.ts';

function passwordForm(ctx: PageContext, notices: Notice[], status = 200): PageResult {
  const forced = ctx.session.mustChangePassword;
  return {
    title: 'Change password',
    section: 'account',
    status,
    notices: forced ? [{ kind: 'info', text: 'Your password must be changed before you go on.' }, ...notices] : notices,
    body: html`<h1>Change password</h1>
<form method="post" action="/console/account/password" class="stack narrow">
  ${csrfField(ctx.frame)}
  <label for="old">Current password</label>
  <input id="old" name="old" type="password" required autocomplete="current-password">
  <label for="new">New password</label>
  <input id="new" name="new" type="password" required autocomplete="new-password" aria-describedby="new-hint">
  <p id="new-hint" class="hint">The account's password policy applies (length and kinds of characters).</p>
  <label for="again">New password again</label>
  <input id="again" name="again" type="password" required autocomplete="new-password">
  <button type="submit" class="primary">Change password</button>
</form>`,
  };
}

export function accountRoutes(sessions: Sessions): Routes {
  return {
    get: {
      '/console/account': async (ctx) => {
        const xml = await ctx.api.query('sts', 'GetCallerIdentity');
        const arn = /<Arn>([^<]*)<\/Arn>/.exec(xml)?.[1] ?? '';
        const notices: Notice[] = ctx.query.get('changed') ? [{ kind: 'success', text: 'Your password has been changed.' }] : [];
        return {
          title: 'Your account',
          section: 'account',
          notices,
          body: html`<h1>Your account</h1>
<dl class="facts">
  <dt>User</dt><dd>${ctx.session.row.userName}</dd>
  <dt>Account</dt><dd>${ctx.session.row.accountId}</dd>
  <dt>ARN</dt><dd><code>${arn}</code></dd>
  <dt>Session ends</dt><dd>${when(ctx.session.row.expiresAtMs)}</dd>
</dl>
<p><a class="button" href="/console/account/password">Change password</a></p>`,
        };
      },
      '/console/account/password': async (ctx) => passwordForm(ctx, []),
    },
    post: {
      '/console/account/password': async (ctx) => {
        const oldPassword = ctx.form.get('old') ?? '';
        const newPassword = ctx.form.get('new') ?? '';
        if (newPassword !== (ctx.form.get('again') ?? '')) return passwordForm(ctx, [{ kind: 'error', text: 'The two new passwords differ.' }], 400);
        try {
          await ctx.api.query('iam', 'ChangePassword', { OldPassword: oldPassword, NewPassword: newPassword });
        } catch (err) {
          if (err instanceof ApiError) return passwordForm(ctx, [{ kind: err.denied ? 'denied' : 'error', text: err.message }], err.denied ? 403 : 400);
          throw err;
        }
        await sessions.passwordChanged(ctx.session);
        return { redirect: '/console/account?changed=1' };
      },
    },
  };
}
