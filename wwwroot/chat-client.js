// The chat protocol (docs/PROTOCOL.md) and reconnection, without any DOM: app.js draws what this reports.
//
// Events (CustomEvent, details as listed):
//   state         { state: 'offline' | 'connecting' | 'connected' | 'reconnecting', attempt, retryInMs }
//   message       a `message` frame not shown before (deduplicated by seq within an epoch); an own message whose
//                 frame will never come is built from its ack (no `ts`); a tombstone (protocol 1.2) has `deleted: true`
//                 and no `text`
//   deleted       { room, seq, epoch } a message of the room was deleted (protocol 1.2): its text goes from view
//   notification  a `notification` frame
//   recovered     { recovered, epochChanged } after a reconnect (or a gap) took the session up again, before the missed messages
//   presence      a `presence` frame (extension): { user, present } when a user's first connection joined or last left
//   removed       { reason } the operator removed this user from the room (close 4003, or a ban on reconnect); no reconnect follows
//   pending       { key, user, text, state, error, seq } one of the reader's own messages not yet in the room's list:
//                 'waiting' (for the connection), 'sending' (out, unanswered), 'failed' (error says why: retry() or
//                 discard()), 'sent' (acknowledged as seq; its message frame is on its way), then 'done' (its item goes:
//                 the `message` event that follows shows it) or 'discarded'
//   typing        { users } who is typing now, oldest first, never the reader: on every change, expiry included

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 10_000;
const CONNECT_TIMEOUT_MS = 10_000;   // a dead host can leave a socket "connecting" for minutes
const REQUEST_TIMEOUT_MS = 10_000;   // a request the server never answers fails with a message instead of blocking
const NORMAL_CLOSURE = 1000;
const REMOVED_FROM_ROOM = 4003;   // the operator kicked or banned this user (docs/API.md): no reconnect
const BANNED = 'You are banned from room';   // how a ban's refusal of updateSocketId begins
// The server forwards one `typing` per connection every 2 s and drops the rest; a little over that keeps network
// jitter from making it drop one (and the reader's "is typing…" from blinking out between two).
const TYPING_INTERVAL_MS = 2_100;
const TYPING_SHOWN_MS = 3_000;       // "alice is typing…" lasts this long after her last `typing`

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
  #me = null;               // the name the room knows this reader by: own messages and own typing are matched against it
  #outbox = [];             // own messages not yet in the room's list, oldest first: { key, text, state, error, seq }
  #typing = new Map();      // user -> when their "is typing" ends (performance.now()), in order of arrival
  #typingTimer = null;
  #lastTypingSent = -Infinity;
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

  /** The name the room knows the reader by (with tokens, the token's): their own messages carry it. */
  get user() { return this.#me; }

  /**
   * Connects and signs in. Resolves with the ack (its `messages` are the room's history, oldest first); rejects with an
   * Error whose message a person can read. After this, lost connections are re-opened on their own.
   */
  async signIn(user, room) {
    this.#closeSession('You left the room.');   // what was sent since beginSignIn() stays: it belongs to this sign-in
    this.#stopped = false;
    this.#user = user;
    this.#me = user ?? null;   // with tokens, the token's name (#authenticate)
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
   * Sends a message and returns its key (protocol 1.2), which every `pending` event about it carries. While signing in
   * or reconnecting it waits and goes out in order right after the (re)sign-in ack, as Socket.IO buffers what is emitted
   * before the connection is up. A connection lost before the answer sends it again, with the same key, after the
   * reconnect: the server stores a key once, so the room sees it once. A refusal or no answer in time leaves it
   * 'failed' until retry() or discard(); its own message frame, whenever it comes, settles it.
   */
  send(text) {
    if (this.#stopped) {
      throw new Error('Not connected.');
    }

    const entry = { key: newKey(), text, state: 'waiting', error: null, seq: null };
    this.#outbox.push(entry);
    if (this.#state === 'connected') {
      this.#transmit(entry);
    } else {
      this.#report(entry);
    }

    return entry.key;
  }

  /** Sends a failed message again, with the key it had: if the first try was stored after all, the room still sees one. */
  retry(key) {
    const entry = this.#outbox.find((e) => e.key === key);
    if (entry?.state !== 'failed') {
      return;
    }

    entry.state = 'waiting';
    entry.error = null;
    if (this.#state === 'connected') {
      this.#transmit(entry);
    } else {
      this.#report(entry);   // goes out with the others after the reconnect, in its place
    }
  }

  /** Gives up a failed message. */
  discard(key) {
    const entry = this.#outbox.find((e) => e.key === key);
    if (entry?.state === 'failed') {
      this.#remove(entry, 'discarded');
    }
  }

  /** Messages kept by send() until the connection is up again. */
  get queued() { return this.#outbox.filter((e) => e.state === 'waiting').length; }

  /** Says the reader is typing: a `typing` frame at most every 2 s, the server's pace. */
  typing() {
    const now = performance.now();
    if (this.#state !== 'connected' || now - this.#lastTypingSent < TYPING_INTERVAL_MS) {
      return;
    }

    this.#lastTypingSent = now;
    this.#request({ type: 'typing' }).catch(() => {});   // best effort: a lost one only leaves the others' line blank
  }

  #transmit(entry) {
    if (this.#socket?.readyState !== WebSocket.OPEN) {
      this.#report(entry);   // closing already: #closed is next, and the reconnect sends it
      return;
    }

    entry.state = 'sending';
    this.#report(entry);
    this.#request({ type: 'sendMessage', text: entry.text, key: entry.key }).then(
      (ack) => this.#answered(entry, ack),
      (error) => {
        // A connection lost on the way has put it back to 'waiting' (#requeue); what is left is no answer in time.
        if (entry.state === 'sending') {
          this.#fail(entry, error.message);
        }
      });
  }

  #answered(entry, ack) {
    if (entry.state !== 'sending') {
      return;   // its message frame came first and settled it
    }

    if (!ack.ok) {
      this.#fail(entry, ack.error || 'The server refused the message.');
      return;
    }

    entry.state = 'sent';
    entry.seq = ack.seq;
    if (this.#lastSeq !== null && ack.seq <= this.#lastSeq) {
      this.#settle(entry, this.#epoch);   // a resend of one stored earlier whose frame this page never got (history had moved on)
    } else {
      this.#report(entry);
    }
  }

  #fail(entry, error) {
    entry.state = 'failed';
    entry.error = error;
    this.#report(entry);
  }

  /** Sends what waits, oldest first, each with its key; the server handles a connection's frames in order. */
  #flushOutbox() {
    for (const entry of this.#outbox) {
      if (entry.state === 'waiting') {
        this.#transmit(entry);
      }
    }
  }

  /** Sends still unanswered when their socket went away may or may not have been stored: they go out again, same key. */
  #requeue() {
    for (const entry of this.#outbox) {
      if (entry.state === 'sending') {
        entry.state = 'waiting';
        this.#report(entry);
      }
    }
  }

  /**
   * An acknowledged message whose frame will not come (history moved past it, or restarted): shown from its ack, where
   * it stands, without a time. The ack names no epoch: `epoch` is given where it is known (the one the page is in).
   */
  #settle(entry, epoch) {
    this.#remove(entry, 'done');
    this.#emit('message', {
      type: 'message', room: this.#room, user: this.#me, text: entry.text, seq: entry.seq, key: entry.key, epoch: epoch ?? undefined,
    });
  }

  #remove(entry, state) {
    this.#outbox.splice(this.#outbox.indexOf(entry), 1);
    entry.state = state;
    this.#report(entry);
  }

  #report({ key, text, state, error, seq }) {
    this.#emit('pending', { key, user: this.#me, text, state, error, seq });
  }

  /** Extension `members`: each user in the room once, across instances. */
  async members() {
    const ack = await this.#request({ type: 'members' });
    if (!ack.ok) {
      throw new Error(ack.error || 'The server could not list the members.');
    }

    return ack.members ?? [];
  }

  /**
   * `history` (protocol 1.2): up to `limit` stored messages older than (`epoch`, `before`), oldest first, going on into
   * older epochs of the room (each message carries its `epoch`), and whether more remain. Absent `before`: from the
   * newest; absent `epoch`: the current one. To go on, pass the oldest returned message's `seq` and `epoch`.
   */
  async history(before, epoch, limit) {
    const ack = await this.#request({ type: 'history', before, epoch, limit });
    if (!ack.ok) {
      throw new Error(ack.error || 'The server could not load older messages.');
    }

    return { messages: ack.messages ?? [], more: ack.more === true, epoch: ack.epoch };
  }

  /**
   * `search` (protocol 1.2): messages of the room matching the words of `q`, newest first, and whether more remain;
   * `before`/`epoch` (the last result's `seq` and `epoch`) go on past a page. Rejects with the server's words, e.g. when
   * it has no history database.
   */
  async search(q, { before, epoch, limit } = {}) {
    const ack = await this.#request({ type: 'search', q, before, epoch, limit });
    if (!ack.ok) {
      throw new Error(ack.error || 'The server could not search the room.');
    }

    return { messages: ack.messages ?? [], more: ack.more === true };
  }

  /**
   * `deleteMessage` (protocol 1.2): deletes one of the reader's own messages. Resolves once the server has; every member,
   * the reader included, then gets a `deleted` event. Rejects with the server's words.
   */
  async deleteMessage(seq, epoch) {
    const ack = await this.#request({ type: 'deleteMessage', seq, epoch });
    if (!ack.ok) {
      throw new Error(ack.error || 'The server could not delete the message.');
    }
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

  /** Leaves for good: closes the socket and stops reconnecting; own messages not yet in the room are given up. */
  stop() {
    this.#stop('You left the room.');
  }

  /** The operator removed this user from the room (a kick, a ban): say why and stop, without reconnecting. */
  #removed(reason) {
    this.#emit('removed', { reason });
    this.#stop(reason);
  }

  #stop(reason) {
    this.#closeSession(reason);
    for (const entry of [...this.#outbox]) {
      this.#remove(entry, 'discarded');
    }

    this.#setState('offline');
  }

  /** Ends the current session (socket, retries, requests in flight, who is typing) but leaves the outbox to the caller. */
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

    this.#requeue();
    this.#failPending(reason);
    if (this.#typing.size > 0) {
      this.#typing.clear();
      this.#typingChanged();
    }
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
          if (event.code === REMOVED_FROM_ROOM) {
            this.#removed(`You were removed from the room: ${event.reason || 'removed from the room'}.`);
          }
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
    this.#requeue();
    this.#failPending('The connection was lost before the server answered.');
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

    if (!ack.ok && ack.error?.startsWith(BANNED)) {
      this.#removed(ack.error);   // banned meanwhile: trying again would only be refused again
      return;
    }

    if (!ack.ok) {
      socket.close();   // e.g. the message store is unavailable there: try again later
      return;
    }

    const epochChanged = this.#epoch !== null && ack.epoch !== this.#epoch;
    if (epochChanged) {
      this.#newEpoch(ack.epoch);
    }

    this.#attempt = 0;
    // Told before the recovered messages are shown, so a "some were lost" notice sits where the gap is.
    this.#emit('recovered', { recovered: ack.recovered !== false, epochChanged });
    for (const message of ack.messages ?? []) {
      this.#accept(message);   // an own message among them was stored before the connection went: not sent again
    }

    this.#flushOutbox();   // the rest, in order, before anything sent from now on; their echo follows
    this.#setState('connected');
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
      case 'deleted':
        if (frame.room === this.#room) {
          this.#emit('deleted', { room: frame.room, seq: frame.seq, epoch: frame.epoch });
        }

        break;
      case 'typing':
        // The server leaves out this connection, but not the reader's other tabs.
        if (frame.room === this.#room && frame.user !== this.#me) {
          this.#someoneTyping(frame.user);
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

  /**
   * Shows a message unless it was shown already (by seq). An own message settles its send (by key): its item gives way
   * to it. Acknowledged sends older than it whose frames were passed over are shown first, from their acks.
   */
  #accept(message) {
    if (this.#epoch !== null && message.epoch && message.epoch !== this.#epoch) {
      this.#newEpoch(message.epoch);
    }

    if (this.#lastSeq !== null && message.seq <= this.#lastSeq) {
      return;
    }

    this.#epoch ??= message.epoch ?? null;
    this.#lastSeq = message.seq;
    const own = message.key && message.user === this.#me ? this.#outbox.find((e) => e.key === message.key) : undefined;
    for (const entry of this.#outbox.filter((e) => e.state === 'sent' && e !== own && e.seq < message.seq)) {
      this.#settle(entry, this.#epoch);
    }

    if (own) {
      this.#remove(own, 'done');
    }

    if (this.#typing.delete(message.user)) {
      this.#typingChanged();   // the message is what they were typing
    }

    this.#emit('message', message);
  }

  /** The room's history restarted: seq starts over, and acknowledged sends will get no frame from the old one. */
  #newEpoch(epoch) {
    this.#epoch = epoch;
    this.#lastSeq = 0;
    for (const entry of this.#outbox.filter((e) => e.state === 'sent')) {
      this.#settle(entry);   // in which epoch the ack numbered it is not known: drawn without one (and not deletable)
    }
  }

  #someoneTyping(user) {
    const isNew = !this.#typing.has(user);
    this.#typing.set(user, performance.now() + TYPING_SHOWN_MS);
    if (isNew) {
      this.#typingChanged();
    } else {
      this.#scheduleTypingExpiry();
    }
  }

  #typingChanged() {
    this.#scheduleTypingExpiry();
    this.#emit('typing', { users: [...this.#typing.keys()] });
  }

  /** One timer, for the earliest end: then whoever's time is up goes. */
  #scheduleTypingExpiry() {
    clearTimeout(this.#typingTimer);
    this.#typingTimer = null;
    if (this.#typing.size === 0) {
      return;
    }

    const next = Math.min(...this.#typing.values());
    this.#typingTimer = setTimeout(() => {
      const now = performance.now();
      const before = this.#typing.size;
      for (const [user, until] of this.#typing) {
        if (until <= now) {
          this.#typing.delete(user);
        }
      }

      if (this.#typing.size === before) {
        this.#scheduleTypingExpiry();
      } else {
        this.#typingChanged();
      }
    }, Math.max(0, next - performance.now()));
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

    this.#me = ack.user ?? this.#me;
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

  #setState(state, extra = {}) {
    this.#state = state;
    this.#emit('state', { state, attempt: this.#attempt, ...extra });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/** A message's key: randomUUID() exists only in secure contexts (https, localhost), so plain http gets 128 random bits. */
function newKey() {
  return crypto.randomUUID?.() ?? Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}
