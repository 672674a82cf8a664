// Drives one connection with the Node `ws` library (tools/node_modules/ws, found through NODE_PATH) for
// WebSocketConformanceNodeTests. Usage: node ws-driver.js <url> <scenario> <json args>
// Prints one JSON object per line for everything it sees:
//   {"event":"open"} {"event":"message","binary":false,"data":"..."} {"event":"pong","hex":"..."}
//   {"event":"fin"} (the server ended the TCP stream) {"event":"close","code":1000,"reason":"..."} {"event":"error","message":"..."}
// and exits once the connection has closed (ws emits 'close' only after the TCP connection is gone).
'use strict';

const WebSocket = require('ws');

const [url, scenario, argsJson] = process.argv.slice(2);
const args = JSON.parse(argsJson || '{}');

function print(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

const ws = new WebSocket(url, { perMessageDeflate: false });
const waiters = [];   // [predicate, resolve]

function waitFor(predicate) {
  return new Promise((resolve) => waiters.push([predicate, resolve]));
}

function seen(event) {
  print(event);
  for (let i = waiters.length - 1; i >= 0; i--) {
    if (waiters[i][0](event)) {
      const [, resolve] = waiters.splice(i, 1)[0];
      resolve(event);
    }
  }
}

function isAck(id) {
  return (e) => e.event === 'message' && !e.binary && JSON.parse(e.data).type === 'ack' && JSON.parse(e.data).id === id;
}

ws.on('upgrade', (res) => {
  res.socket.on('end', () => seen({ event: 'fin' }));
});
ws.on('message', (data, isBinary) => seen({ event: 'message', binary: isBinary, data: isBinary ? data.toString('hex') : data.toString('utf8') }));
ws.on('pong', (data) => seen({ event: 'pong', hex: data.toString('hex') }));
ws.on('error', (err) => seen({ event: 'error', message: String(err && err.message) }));
ws.on('close', (code, reason) => {
  seen({ event: 'close', code, reason: reason.toString('utf8') });
  clearTimeout(guard);
  process.exitCode = 0;
});

// A driver that hangs is a failure the test reports; it never outlives 30 s.
const guard = setTimeout(() => {
  print({ event: 'timeout' });
  process.exit(3);
}, 30000);

function signin(id) {
  return JSON.stringify({ type: 'signin', id, user: args.user, room: args.room });
}

function thirds(text) {
  const a = Math.floor(text.length / 3);
  const b = Math.floor((2 * text.length) / 3);
  return [text.slice(0, a), text.slice(a, b), text.slice(b)];
}

const scenarios = {
  // 1: a signin split into three fragments (Text, Continuation, Continuation+FIN) gets its ack.
  async fragmented() {
    const [p1, p2, p3] = thirds(signin('frag'));
    ws.send(p1, { fin: false });
    ws.send(p2, { fin: false });
    ws.send(p3, { fin: true });
    await waitFor(isAck('frag'));
    ws.close(1000, 'done');
  },

  // 2: a Ping with a payload between fragments is answered with the same payload before the message ends,
  // and the message is still handled.
  async pingBetweenFragments() {
    const [p1, p2, p3] = thirds(signin('frag'));
    ws.send(p1, { fin: false });
    ws.ping(Buffer.from(args.ping, 'utf8'));
    await waitFor((e) => e.event === 'pong');
    ws.send(p2, { fin: false });
    ws.ping(Buffer.alloc(0));
    await waitFor((e) => e.event === 'pong' && e.hex === '');
    ws.send(p3, { fin: true });
    await waitFor(isAck('frag'));
    ws.close(1000, 'done');
  },

  // 3: sign in, then close with the given code and reason.
  async clientClose() {
    ws.send(signin('in'));
    await waitFor(isAck('in'));
    print({ event: 'closing' });
    ws.close(args.code, args.reason);
  },

  // 4: a text message of args.size bytes in args.fragments fragments; the server closes (1009 over the limit).
  async big() {
    ws.send(signin('in'));
    await waitFor(isAck('in'));
    const text = 'x'.repeat(args.size);
    const size = Math.ceil(text.length / args.fragments);
    for (let i = 0; i < args.fragments; i++) {
      ws.send(text.slice(i * size, (i + 1) * size), { fin: i === args.fragments - 1 });
    }

    if (args.closeAfterAck) {   // within the limit: the message is answered (not JSON: an error ack with id null)
      await waitFor((e) => e.event === 'message' && JSON.parse(e.data).type === 'ack' && JSON.parse(e.data).id === null);
      ws.close(1000, 'done');
    }
  },

  // 5: a text frame whose payload is not UTF-8 (ws does not check what it sends).
  async invalidUtf8() {
    ws.send(signin('in'));
    await waitFor(isAck('in'));
    ws.send(Buffer.from(args.hex, 'hex'), { binary: false });
  },
};

ws.on('open', () => {
  seen({ event: 'open' });
  const run = scenarios[scenario];
  if (!run) {
    print({ event: 'error', message: `unknown scenario ${scenario}` });
    process.exit(2);
  }

  run().catch((err) => {
    print({ event: 'error', message: String(err && err.stack) });
    process.exit(4);
  });
});
