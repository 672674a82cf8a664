// The chat protocol (docs/PROTOCOL.md) and reconnection, without any DOM: app.js draws what this reports.
//
// Events (CustomEvent, details as listed):
//   state         { state: 'offline' | 'connecting' | 'connected' | 'reconnecting', attempt, retryInMs }
//   message       a `message` frame not shown before (deduplicated by seq within an epoch)
//   notification  a `notification` frame
//   recovered     { recovered, epochChanged } after a reconnect (or a gap) took the session up again, before the missed messages
//   presence      a `presence` frame (extension): { user, present } when a user's first connection joined or last left

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 10_000;
const CONNECT_TIMEOUT_MS = 10_000;   // a dead host can leave a socket "connecting" for minutes
const REQUEST_TIMEOUT_MS = 10_000;   // a request the server never answers fails with a message instead of blocking
const NORMAL_CLOSURE = 1000;

export class ChatClient extends EventTarget {
  #url;
  #socket = null;
  #user = null;
  #room = null;
  #epoch = null;
  #lastSeq = null;          // highest seq shown within #epoch: `since` for updateSocketId
  #signedIn = false;        // true once a signin ack said ok: from then on, reconnects take the session up again
  #stopped = true;
  #attempt = 0;
  #retryTimer = null;
  #nextId = 1;
  #pending = new Map();     // id -> { resolve, reject, timer }
  #outbox = [];             // sendMessage texts sent before the (re)sign-in ack: { text, resolve, reject }, oldest first
  #state = 'offline';
  #auth = null;             // a TokenAuth (auth.js) when the server requires tokens

  constructor(url) {
    super();
    this.#url = url;
  }

  get state() { return this.#state; }

  /** Authentication (auth.js): each new socket sends `auth` before signin/updateSocketId. */
  useAuth(auth) { this.#auth = auth; }

  get room() { return this.#room; }

  /**
   * Connects and signs in. Resolves with the ack (its `messages` are the room's history, oldest first); rejects with an
   * Error whose message a person can read. After this, lost connections are re-opened on their own.
   */
  async signIn(user, room) {
    this.#closeSession('You left the room.');   // what was sent since beginSignIn() stays: it belongs to this sign-in
    this.#stopped = false;
    this.#user = user;
    this.#room = room;
    this.#epoch = null;
    this.#lastSeq = null;
    try {
      await this.#open('connecting');
    } catch {
      this.#stop('The chat server could not be reached.');
      throw new Error('Could not reach the chat server. Check your connection and try again.');
    }

    let ack;
    try {
      await this.#authenticate();
      ack = await this.#request({ type: 'signin', user, room });
    } catch (error) {
      this.#stop(error.message);
      throw error;
    }

    if (!ack.ok) {
      this.#stop('The sign-in was refused.');
      throw new Error(ack.error || 'The server refused the sign-in.');
    }

    this.#signedIn = true;
    this.#room = ack.room ?? room;
    this.#epoch = ack.epoch ?? null;
    const history = ack.messages ?? [];
    this.#lastSeq = history.length > 0 ? history[history.length - 1].seq : 0;
    this.#attempt = 0;
    this.#flushOutbox();   // on the wire right behind the ack; the server answers them after this returns
    this.#setState('connected');
    return ack;
  }

  /**
   * Sends a message. While signing in or reconnecting the text is kept and sent once, in order, right after the
   * (re)sign-in ack, as Socket.IO buffers what is emitted before the connection is up; resolves with the server's ack.
   * Rejects when the client is offline, with the server's words on ok:false, and when no ack comes in time.
   */
  send(text) {
    if (this.#stopped) {
      return Promise.reject(new Error('Not connected.'));
    }

    if (this.#state !== 'connected' || this.#outbox.length > 0) {
      return new Promise((resolve, reject) => this.#outbox.push({ text, resolve, reject }));
    }

    return this.#sendNow(text);
  }

  /** Texts kept by send() until the connection is up again. */
  get queued() { return this.#outbox.length; }

  async #sendNow(text) {
    const ack = await this.#request({ type: 'sendMessage', text });
    if (!ack.ok) {
      throw new Error(ack.error || 'The server refused the message.');
    }

    return ack;
  }

  /**
   * Sends what send() kept, oldest first, each exactly once: a text leaves the outbox as its frame goes out, so a
   * connection lost before the ack fails that send (it may or may not have been stored) instead of repeating it.
   * The frames go out back to back; the server handles a connection's frames in order.
   */
  #flushOutbox() {
    const waiting = this.#outbox;
    this.#outbox = [];
    for (const { text, resolve, reject } of waiting) {
      this.#sendNow(text).then(resolve, reject);
    }
  }

  /** Extension `members`: each user in the room once, across instances. */
  async members() {
    const ack = await this.#request({ type: 'members' });
    if (!ack.ok) {
      throw new Error(ack.error || 'The server could not list the members.');
    }

    return ack.members ?? [];
  }

  /** Extension `history`: up to `limit` stored messages older than `before`, oldest first, and whether more remain. */
  async history(before, limit) {
    const ack = await this.#request({ type: 'history', before, limit });
    if (!ack.ok) {
      throw new Error(ack.error || 'The server could not load older messages.');
    }

    return { messages: ack.messages ?? [], more: ack.more === true, epoch: ack.epoch };
  }

  get epoch() { return this.#epoch; }

  /** Skips the rest of the back-off wait (the browser came back online, or the person asked). */
  retryNow() {
    if (this.#state === 'reconnecting' && this.#retryTimer !== null) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = null;
      this.#reconnect();
    }
  }

  /**
   * Says a sign-in is about to start (the page may have to wait for something first): from now on send() keeps what
   * it is given for that sign-in, as it does while signIn() runs. Leaving with stop() drops it.
   */
  beginSignIn() {
    if (this.#stopped) {
      this.#stopped = false;
      this.#setState('connecting');
    }
  }

  /** Leaves for good: closes the socket and stops reconnecting; what send() kept is not sent. */
  stop() {
    this.#stop('You left the room.');
  }

  #stop(reason) {
    this.#closeSession(reason);
    this.#failOutbox(reason);
    this.#setState('offline');
  }

  /** Ends the current session (socket, retries, requests in flight) but leaves the outbox to the caller. */
  #closeSession(reason) {
    this.#stopped = true;
    this.#signedIn = false;
    this.#auth?.stop();
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    const socket = this.#socket;
    this.#socket = null;
    if (socket) {
      socket.close(NORMAL_CLOSURE, 'bye');
    }

    this.#failPending(reason);
  }

  #open(state) {
    this.#setState(state);
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.#url);
      this.#socket = socket;
      const timeout = setTimeout(() => socket.close(), CONNECT_TIMEOUT_MS);
      socket.addEventListener('open', () => {
        clearTimeout(timeout);
        resolve();
      });
      socket.addEventListener('message', (event) => this.#receive(socket, event.data));
      socket.addEventListener('close', (event) => {
        clearTimeout(timeout);
        if (socket === this.#socket) {
          this.#auth?.connectionClosed(event.code);   // 4001: the token expired; the reconnect gets a new one
        }

        reject(new Error('closed'));   // ignored once open has resolved
        this.#closed(socket);
      });
    });
  }

  #closed(socket) {
    if (socket !== this.#socket) {
      return;   // an older socket we already replaced or closed on purpose
    }

    this.#socket = null;
    this.#failPending('The connection was lost before the server answered; the message may not have been sent.');
    if (this.#signedIn && !this.#stopped) {
      this.#scheduleReconnect();
    }
  }

  #scheduleReconnect() {
    // Exponential back-off with "equal jitter": half the window fixed, half random, so that a restarted instance is
    // not hit by all of its former clients in the same instant.
    const window = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.#attempt);
    const delay = Math.round(window / 2 + Math.random() * window / 2);
    this.#attempt += 1;
    this.#setState('reconnecting', { retryInMs: delay });
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#reconnect();
    }, delay);
  }

  async #reconnect() {
    try {
      await this.#open('reconnecting');
    } catch {
      return;   // #closed has scheduled the next try
    }

    try {
      await this.#authenticate();
    } catch {
      this.#socket?.close();   // no token now (or refused): try again later
      return;
    }

    await this.#resume();
  }

  /** Takes the session up again on the current socket: updateSocketId from the last seq shown, then what was missed. */
  async #resume() {
    const socket = this.#socket;
    let ack;
    try {
      ack = await this.#request({
        type: 'updateSocketId', user: this.#user, room: this.#room, since: this.#lastSeq ?? 0, epoch: this.#epoch ?? undefined,
      });
    } catch {
      if (socket === this.#socket) {
        socket.close();   // no answer in time: drop this socket, #closed schedules the next try
      }

      return;   // or lost again before the answer, and #closed has scheduled the next try
    }

    if (!ack.ok) {
      socket.close();   // e.g. the message store is unavailable there: try again later
      return;
    }

    const epochChanged = this.#epoch !== null && ack.epoch !== this.#epoch;
    if (epochChanged) {
      this.#epoch = ack.epoch;
      this.#lastSeq = 0;
    }

    this.#attempt = 0;
    this.#flushOutbox();   // what was sent while away goes out now; its echo arrives after the missed messages below
    this.#setState('connected');
    // Told before the recovered messages are shown, so a "some were lost" notice sits where the gap is.
    this.#emit('recovered', { recovered: ack.recovered !== false, epochChanged });
    for (const message of ack.messages ?? []) {
      this.#accept(message);
    }
  }

  #receive(socket, data) {
    if (socket !== this.#socket) {
      return;
    }

    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;   // the server only sends JSON; anything else is not ours to show
    }

    switch (frame.type) {
      case 'ack': {
        const pending = this.#pending.get(frame.id);
        if (pending) {
          this.#pending.delete(frame.id);
          clearTimeout(pending.timer);
          pending.resolve(frame);
        }

        break;
      }

      case 'message':
        if (frame.room === this.#room) {
          this.#accept(frame);
        }

        break;
      case 'notification':
        if (frame.room === this.#room) {
          this.#emit('notification', frame);
        }

        break;
      case 'presence':
        if (frame.room === this.#room) {
          this.#emit('presence', frame);
        }

        break;
      case 'gap':
        // Messages were lost between instances and are gone from history: reloading from #lastSeq on this socket
        // shows whatever history still has and tells the person the rest is lost (recovered:false).
        this.#resume();
        break;
      default:
        break;   // the server may add frame types (PROTOCOL.md): ignore what we do not know
    }
  }

  /** Shows a message unless it was shown already. */
  #accept(message) {
    if (this.#epoch !== null && message.epoch && message.epoch !== this.#epoch) {
      this.#epoch = message.epoch;   // the room's history restarted: seq starts over
      this.#lastSeq = 0;
    }

    if (this.#lastSeq !== null && message.seq <= this.#lastSeq) {
      return;
    }

    this.#epoch ??= message.epoch ?? null;
    this.#lastSeq = message.seq;
    this.#emit('message', message);
  }

  /** Sends `auth` on the current socket when the server requires tokens; throws with the server's words when refused. */
  async #authenticate() {
    if (!this.#auth) {
      return;
    }

    const ack = await this.#auth.authenticate((frame) => this.#request(frame));
    if (!ack.ok) {
      throw new Error(ack.error || 'The server refused the sign-in token.');
    }
  }

  #request(frame) {
    const socket = this.#socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(new Error('Not connected.'));
    }

    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.#pending.delete(id)) {
          reject(new Error(`The server did not answer within ${REQUEST_TIMEOUT_MS / 1000} s; it may or may not have done it.`));
        }
      }, REQUEST_TIMEOUT_MS);
      this.#pending.set(id, { resolve, reject, timer });
      socket.send(JSON.stringify({ ...frame, id }));
    });
  }

  #failPending(reason) {
    for (const { reject, timer } of this.#pending.values()) {
      clearTimeout(timer);
      reject(new Error(reason));
    }

    this.#pending.clear();
  }

  #failOutbox(reason) {
    const waiting = this.#outbox;
    this.#outbox = [];
    for (const { reject } of waiting) {
      reject(new Error(reason));
    }
  }

  #setState(state, extra = {}) {
    this.#state = state;
    this.#emit('state', { state, attempt: this.#attempt, ...extra });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
