// Optional sign-in with tokens (docs/PROTOCOL.md, "Authentication (optional, protocol 1.1)"). Without a configured
// authority on the server this module does nothing and the page asks for a name, as in v1.
//
// The operator's hook, the token provider: a function set before app.js runs (a module script of your own, listed in
// index.html before app.js; the Content-Security-Policy allows only same-origin scripts):
//
//   window.chatTokenProvider = async ({ reason }) => '<a JWT from your identity provider>';
//
// `reason` is 'signin' (the person pressed Sign in), 'refresh' (the current token expires soon; the page sends the new
// one in an `auth` frame on the open connection) or 'expired' (the server closed the connection with 4001: return a
// freshly minted token, not a cached one). Return null or throw to decline. The README has a provider for Firebase
// Auth / Identity Platform. Behind Identity-Aware Proxy no provider is needed: the proxy adds its token to the upgrade.
//
// Tokens go only into `auth` frames, never into a URL, and are not stored by the page.

const REFRESH_MARGIN_MS = 60_000;   // refresh this long before expiry (half the lifetime for short-lived tokens)
const TOKEN_EXPIRED = 4001;

/** What ChatClient calls: `authenticate` on each new socket before signin/updateSocketId, and on close and stop. */
export class TokenAuth extends EventTarget {
  #provider;
  #headerUser;
  #reason = 'signin';
  #timer = null;

  constructor(provider, headerUser) {
    super();
    this.#provider = typeof provider === 'function' ? provider : null;
    this.#headerUser = headerUser ?? null;
  }

  /** Sends `auth` with a token from the provider over `request` (frame -> Promise<ack>) and schedules its refresh. */
  async authenticate(request) {
    clearTimeout(this.#timer);
    if (!this.#provider) {
      if (this.#headerUser) {
        this.#identify(this.#headerUser);   // the upgrade carried the proxy's token
        return { ok: true, user: this.#headerUser };
      }

      return { ok: false, error: 'This chat requires sign-in, but the page has no token provider (window.chatTokenProvider).' };
    }

    let token;
    try {
      token = await this.#provider({ reason: this.#reason });
    } catch {
      token = null;
    }

    if (!token) {
      return { ok: false, error: 'Could not get a sign-in token. Sign in to your account and try again.' };
    }

    const ack = await request({ type: 'auth', token });
    if (ack.ok) {
      this.#reason = 'refresh';
      this.#identify(ack.user);
      this.#schedule(ack.expiresAt, request);
    }

    return ack;
  }

  /** The socket closed: after 4001 the next token must be a new one. */
  connectionClosed(code) {
    clearTimeout(this.#timer);
    if (code === TOKEN_EXPIRED) {
      this.#reason = 'expired';
    }
  }

  stop() {
    clearTimeout(this.#timer);
    this.#reason = 'signin';
  }

  #schedule(expiresAt, request) {
    const remaining = Date.parse(expiresAt) - Date.now();
    const delay = remaining > 2 * REFRESH_MARGIN_MS ? remaining - REFRESH_MARGIN_MS : remaining / 2;
    this.#timer = setTimeout(() => this.#refresh(request), Math.max(0, delay));
  }

  async #refresh(request) {
    let token = null;
    try {
      token = await this.#provider({ reason: 'refresh' });
    } catch {
      // declined: the server closes with 4001 at expiry, and the reconnect asks again
    }

    if (!token) {
      return;
    }

    try {
      const ack = await request({ type: 'auth', token });
      if (ack.ok) {
        this.#schedule(ack.expiresAt, request);
      }
    } catch {
      // the socket went away meanwhile; the reconnect authenticates afresh
    }
  }

  #identify(user) {
    this.dispatchEvent(new CustomEvent('identity', { detail: { user } }));
  }
}

/**
 * Asks the server whether tokens are required (GET /auth/config, this server's addition). If so, plugs a TokenAuth into
 * `client`, hides the name field and shows the identity's name in `identityLabel`. Resolves to whether tokens are required.
 */
export async function setUpAuth(client, { nameInput, identityLabel }) {
  let config = { required: false };
  try {
    const response = await fetch('/auth/config', { cache: 'no-store' });
    if (response.ok) {
      config = await response.json();
    }
  } catch {
    // an older server without the endpoint: v1, names typed by hand
  }

  if (!config.required) {
    return false;
  }

  const auth = new TokenAuth(window.chatTokenProvider, config.user);
  auth.addEventListener('identity', (event) => {
    identityLabel.textContent = `Signed in as ${event.detail.user}`;
    identityLabel.hidden = false;
  });
  client.useAuth(auth);
  nameInput.required = false;
  nameInput.hidden = true;
  for (const label of nameInput.labels) {
    label.hidden = true;
  }

  return true;
}
