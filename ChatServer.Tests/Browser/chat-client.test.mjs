// wwwroot/chat-client.js without a browser or a server: `node --test` with a fake WebSocket and a fake clock, so the
// send queue, the typing set and the history, search and delete calls can be driven frame by frame. ChatClientScriptTests
// runs this file.
import { test, mock, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';

class FakeSocket extends EventTarget {
  static OPEN = 1;
  static CLOSED = 3;
  static all = [];
  readyState = 0;
  sent = [];

  constructor(url) {
    super();
    this.url = url;
    FakeSocket.all.push(this);
  }

  send(text) { this.sent.push(JSON.parse(text)); }

  close() { this.drop(1000); }

  open() {
    this.readyState = FakeSocket.OPEN;
    this.dispatchEvent(new Event('open'));
  }

  /** A frame from the server, and what the client does with it before the next task (its promises' reactions). */
  async receive(frame) {
    this.dispatchEvent(new MessageEvent('message', { data: JSON.stringify(frame) }));
    await settle();
  }

  drop(code = 1006) {
    if (this.readyState !== FakeSocket.CLOSED) {
      this.readyState = FakeSocket.CLOSED;
      this.dispatchEvent(Object.assign(new Event('close'), { code }));
    }
  }

  /** The frames of one type this socket carried, oldest first. */
  frames(type) { return this.sent.filter((f) => f.type === type); }
}

let now = 0;
globalThis.WebSocket = FakeSocket;
Object.defineProperty(globalThis, 'performance', { value: { now: () => now }, configurable: true });
Math.random = () => 0;   // the back-off's random half: reconnects come after exactly half the window
const { ChatClient } = await import(new URL('../../wwwroot/chat-client.js', import.meta.url));

const settle = () => new Promise((resolve) => setImmediate(resolve));

async function advance(ms) {
  now += ms;
  mock.timers.tick(ms);
  await settle();
}

beforeEach(() => {
  FakeSocket.all = [];
  mock.timers.enable({ apis: ['setTimeout'] });
});
afterEach(() => mock.timers.reset());

/** A client signed in as alice in room general (epoch e1, empty history), and what it reported. */
async function signedIn() {
  const client = new ChatClient('ws://chat.test/ws');
  const events = [];
  for (const type of ['pending', 'message', 'typing']) {
    client.addEventListener(type, (event) => events.push({ type, ...event.detail }));
  }

  const signingIn = client.signIn('alice', 'general');
  const socket = FakeSocket.all.at(-1);
  socket.open();
  await settle();
  await socket.receive({ type: 'ack', id: socket.frames('signin')[0].id, ok: true, room: 'general', epoch: 'e1', messages: [] });
  await signingIn;
  return { client, socket, events };
}

/** Drops `socket`, lets the back-off pass and opens the next one; returns it with its updateSocketId frame. */
async function reconnect(socket) {
  socket.drop();
  await advance(250);
  const next = FakeSocket.all.at(-1);
  assert.notEqual(next, socket);
  next.open();
  await settle();
  return { next, update: next.frames('updateSocketId')[0] };
}

const stored = (seq, text, key, user = 'alice') => ({ type: 'message', room: 'general', user, text, seq, epoch: 'e1', ts: '2026-01-01T00:00:00.000Z', key });
const states = (events, key) => events.filter((e) => e.type === 'pending' && e.key === key).map((e) => e.state);
const shown = (events) => events.filter((e) => e.type === 'message').map((e) => e.text);

test('what was unanswered when the connection dropped goes out again after updateSocketId, same key, before what was sent later', async () => {
  const { client, socket, events } = await signedIn();
  const first = client.send('one');
  const [sent] = socket.frames('sendMessage');
  assert.equal(sent.key, first);

  socket.drop();
  const later = client.send('two');
  assert.equal(client.queued, 2);
  await advance(250);
  const next = FakeSocket.all.at(-1);
  next.open();
  await settle();
  assert.deepEqual(next.frames('sendMessage'), [], 'nothing before the updateSocketId ack');

  await next.receive({ type: 'ack', id: next.frames('updateSocketId')[0].id, ok: true, room: 'general', epoch: 'e1', messages: [], recovered: true });
  assert.deepEqual(next.frames('sendMessage').map((f) => [f.text, f.key]), [['one', first], ['two', later]]);
  assert.deepEqual(states(events, first), ['sending', 'waiting', 'sending']);
  assert.equal(client.queued, 0);
});

test('a message the recovery brings back with its key is settled by it and not sent again', async () => {
  const { client, socket, events } = await signedIn();
  const key = client.send('made it');
  const { next, update } = await reconnect(socket);
  await next.receive({ type: 'ack', id: update.id, ok: true, room: 'general', epoch: 'e1', messages: [stored(1, 'made it', key)], recovered: true });

  assert.deepEqual(next.frames('sendMessage'), []);
  assert.deepEqual(states(events, key), ['sending', 'waiting', 'done']);
  assert.deepEqual(shown(events), ['made it']);
});

test('someone else\'s message with the same key settles nothing', async () => {
  const { client, socket, events } = await signedIn();
  const key = client.send('mine');
  await socket.receive(stored(1, 'theirs', key, 'mallory'));

  assert.deepEqual(states(events, key), ['sending']);
  assert.deepEqual(shown(events), ['theirs']);
});

test('an ack before the message frame marks it sent; the frame then shows it once, however often it comes', async () => {
  const { client, socket, events } = await signedIn();
  const key = client.send('hello');
  const [sent] = socket.frames('sendMessage');
  await socket.receive({ type: 'ack', id: sent.id, ok: true, seq: 1 });
  await socket.receive(stored(1, 'hello', key));
  await socket.receive(stored(1, 'hello', key));

  assert.deepEqual(states(events, key), ['sending', 'sent', 'done']);
  assert.deepEqual(shown(events), ['hello']);
});

test('an acknowledged message whose frame never comes is shown from its ack before the next one', async () => {
  const { client, socket, events } = await signedIn();
  const key = client.send('hello');
  await socket.receive({ type: 'ack', id: socket.frames('sendMessage')[0].id, ok: true, seq: 1 });
  await socket.receive(stored(2, 'next', 'other-key', 'bob'));

  assert.deepEqual(states(events, key), ['sending', 'sent', 'done']);
  assert.deepEqual(events.filter((e) => e.type === 'message').map((e) => [e.seq, e.text]), [[1, 'hello'], [2, 'next']]);
});

test('a refused message fails with the server\'s words; retry sends it with the same key; discard drops it', async () => {
  const { client, socket, events } = await signedIn();
  const key = client.send('second chance');
  const error = 'The message store is unavailable; nothing was stored. Try again shortly.';
  await socket.receive({ type: 'ack', id: socket.frames('sendMessage')[0].id, ok: false, error });
  assert.deepEqual(events.filter((e) => e.key === key).at(-1), { type: 'pending', key, user: 'alice', text: 'second chance', state: 'failed', error, seq: null });

  client.retry(key);
  assert.deepEqual(socket.frames('sendMessage').map((f) => f.key), [key, key]);

  await socket.receive({ type: 'ack', id: socket.frames('sendMessage')[1].id, ok: false, error });
  client.discard(key);
  assert.deepEqual(states(events, key), ['sending', 'failed', 'sending', 'failed', 'discarded']);
  client.retry(key);
  assert.equal(socket.frames('sendMessage').length, 2, 'a discarded message is gone');
});

test('a send with no answer in 10 s fails, and its frame arriving later still settles it', async () => {
  const { client, socket, events } = await signedIn();
  const key = client.send('slow');
  await advance(10_000);
  assert.match(events.filter((e) => e.key === key).at(-1).error, /did not answer within 10 s/);

  await socket.receive(stored(1, 'slow', key));
  assert.deepEqual(states(events, key), ['sending', 'failed', 'done']);
});

test('typing goes out at most every 2 s; others show for 3 s after their last; never the reader; a message ends it', async () => {
  const { client, socket, events } = await signedIn();
  const typing = () => events.filter((e) => e.type === 'typing').map((e) => e.users.join(','));

  client.typing();
  client.typing();
  await advance(1_999);
  client.typing();
  assert.equal(socket.frames('typing').length, 1);
  await advance(200);
  client.typing();
  assert.equal(socket.frames('typing').length, 2);

  await socket.receive({ type: 'typing', room: 'general', user: 'alice' });   // the reader's other tab
  await socket.receive({ type: 'typing', room: 'general', user: 'bob' });
  await advance(1_000);
  await socket.receive({ type: 'typing', room: 'general', user: 'carol' });
  await socket.receive({ type: 'typing', room: 'general', user: 'bob' });     // bob again: his 3 s start over
  assert.deepEqual(typing(), ['bob', 'bob,carol']);

  await socket.receive(stored(1, 'hi', 'k', 'carol'));
  assert.deepEqual(typing(), ['bob', 'bob,carol', 'bob']);
  await advance(2_999);
  assert.deepEqual(typing(), ['bob', 'bob,carol', 'bob']);
  await advance(1);
  assert.deepEqual(typing(), ['bob', 'bob,carol', 'bob', '']);
});

test('history pages from a seq and its epoch, and search goes on from the last result; both answer what the ack holds', async () => {
  const { client, socket } = await signedIn();
  const paging = client.history(3, 'e0', 50);
  const [asked] = socket.frames('history');
  assert.deepEqual({ ...asked, id: 0 }, { type: 'history', id: 0, before: 3, epoch: 'e0', limit: 50 });
  const older = { ...stored(2, 'older', 'k2'), epoch: 'e0' };
  await socket.receive({ type: 'ack', id: asked.id, ok: true, room: 'general', epoch: 'e1', messages: [older], more: true });
  assert.deepEqual(await paging, { messages: [older], more: true, epoch: 'e1' });

  const searching = client.search('release notes', { before: 7, epoch: 'e0', limit: 20 });
  const [query] = socket.frames('search');
  assert.deepEqual({ ...query, id: 0 }, { type: 'search', id: 0, q: 'release notes', before: 7, epoch: 'e0', limit: 20 });
  await socket.receive({ type: 'ack', id: query.id, ok: true, room: 'general', messages: [older], more: false });
  assert.deepEqual(await searching, { messages: [older], more: false });

  client.search('first page').catch(() => {});   // never answered here
  assert.deepEqual(Object.keys(socket.frames('search')[1]).sort(), ['id', 'q', 'type'], 'no before or epoch on a first page');
});

test('search and deleteMessage reject with the server\'s words', async () => {
  const { client, socket } = await signedIn();
  const noDatabase = 'Search needs the history database (History__ConnectionString).';
  const searching = assert.rejects(client.search('anything'), { message: noDatabase });
  await socket.receive({ type: 'ack', id: socket.frames('search')[0].id, ok: false, error: noDatabase });
  await searching;

  const deleting = assert.rejects(client.deleteMessage(4, 'e1'), { message: 'You can delete only your own messages.' });
  const [sent] = socket.frames('deleteMessage');
  assert.deepEqual({ ...sent, id: 0 }, { type: 'deleteMessage', id: 0, seq: 4, epoch: 'e1' });
  await socket.receive({ type: 'ack', id: sent.id, ok: false, error: 'You can delete only your own messages.' });
  await deleting;

  const again = client.deleteMessage(5, 'e1');
  await socket.receive({ type: 'ack', id: socket.frames('deleteMessage')[1].id, ok: true });
  assert.equal(await again, undefined);
});

test('a deleted frame of the room is reported; one of another room is not; a tombstone comes as a message with deleted', async () => {
  const { client, socket, events } = await signedIn();
  const deleted = [];
  client.addEventListener('deleted', (event) => deleted.push(event.detail));
  await socket.receive({ type: 'deleted', room: 'elsewhere', seq: 1, epoch: 'e1' });
  await socket.receive({ type: 'deleted', room: 'general', seq: 1, epoch: 'e1' });
  assert.deepEqual(deleted, [{ room: 'general', seq: 1, epoch: 'e1' }]);

  const { next, update } = await reconnect(socket);
  const tombstone = { type: 'message', room: 'general', user: 'alice', seq: 1, epoch: 'e1', ts: '2026-01-01T00:00:00.000Z', deleted: true };
  await next.receive({ type: 'ack', id: update.id, ok: true, room: 'general', epoch: 'e1', messages: [tombstone], recovered: true });
  assert.deepEqual(events.filter((e) => e.type === 'message').map(({ seq, deleted: gone, text }) => ({ seq, gone, text })),
    [{ seq: 1, gone: true, text: undefined }]);
  assert.equal(client.user, 'alice');
});

test('a message shown from its ack carries the epoch it was acknowledged in, so it can be deleted', async () => {
  const { client, socket, events } = await signedIn();
  client.send('hello');
  await socket.receive({ type: 'ack', id: socket.frames('sendMessage')[0].id, ok: true, seq: 1 });
  await socket.receive(stored(2, 'next', 'other-key', 'bob'));

  assert.deepEqual(events.filter((e) => e.type === 'message').map((e) => [e.seq, e.epoch]), [[1, 'e1'], [2, 'e1']]);
});
