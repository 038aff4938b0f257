/**
 * The two HTML documents the console serves. Neither runs inline script (the CSP forbids it):
 * the app is /app.js, the looks /app.css.
 */

const escape = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function shellPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>iii-cluster console</title><link rel="stylesheet" href="/app.css"></head>
<body><div id="app">Loading…</div><script src="/app.js"></script></body></html>
`;
}

/** `form`: false when signing in cannot help (no token configured, a non-loopback peer). */
export function loginPage(message?: string, form = true): string {
  const note = message === undefined ? '' : `<p class="error" role="alert">${escape(message)}</p>`;
  const fields = form
    ? `<form method="post" action="/login"><label>Worker token or credential <input type="password" name="token" autocomplete="current-password" autofocus required></label><button type="submit">Sign in</button></form>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · iii-cluster console</title><link rel="stylesheet" href="/app.css"></head>
<body><main class="login"><h1>iii-cluster console</h1>${note}${fields}</main></body></html>
`;
}
