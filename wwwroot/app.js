// The page: draws what ChatClient reports. Every string that came from a person or the server is set with
// textContent, never innerHTML, so `<img src=x onerror=alert(1)>` shows as those characters.
import { ChatClient } from './chat-client.js';
import { setUpAuth } from './auth.js';

const $ = (selector) => document.querySelector(selector);
const signinView = $('#signin-view');
const signinForm = $('#signin');
const signinButton = $('#signin .signin');
const signinError = $('#signin-error');
const nameInput = $('#name');
const roomInput = $('#room');
const chatroom = $('#chatroom');
const roomHeading = $('#chatroom h1');
const messages = $('#messages');
const chatForm = $('#chat');
const msgInput = $('#msg');
const feedback = $('#chat-feedback');
const statusBadge = $('#status');
const leaveButton = $('#leave');
const memberList = $('#member-list');
const typingLine = $('#typing');

// The page shows the newest PAGE messages of the history it gets on sign-in, and loads older ones from the server
// (the `history` extension) when the person scrolls to the top.
const PAGE = 50;
let oldestSeq = null;
let hasOlder = false;
let loadingOlder = false;
const members = new Set();
let presenceDuringRefresh = null;   // presence frames that arrive while a `members` request is out, applied after it

const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
const client = new ChatClient(`${scheme}//${location.host}/ws`);
// The person's own locale and time zone: the time of day beside each message, the full date and time on hover.
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const fullTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });
// With authentication on (auth.js), the name comes from the token: the name field is hidden and not sent.
const tokensRequired = setUpAuth(client, { nameInput, identityLabel: $('#identity') });

function atBottom() {
  return messages.scrollHeight - messages.scrollTop - messages.clientHeight < 40;
}

// The reader's own messages that the room has not shown yet (data-send: their state) stay at the bottom, below
// whatever the room says meanwhile.
function append(item) {
  insert(item, messages.querySelector('li[data-send]'));
}

function insert(item, before) {
  const follow = atBottom();
  messages.insertBefore(item, before);
  if (follow) {
    item.scrollIntoView({ block: 'end' });
  }
}

function ownItem(key) {
  return messages.querySelector(`li[data-send][data-key="${CSS.escape(key)}"]`);
}

// The item's text is exactly "user: text", as Google's sample test reads it: the time of day is drawn by CSS from
// data-time (generated content is not part of the text), the full date and time is the hover title.
function showMessage(message) {
  append(messageItem(message));
}

// An own message on its way: drawn as it will be once in the room, marked by its state ("sending…" is drawn by CSS);
// a failed one says why and offers Retry (the same key: never stored twice) and Discard.
function showPending(entry) {
  const shown = ownItem(entry.key);
  if (entry.state === 'done' || entry.state === 'discarded') {
    shown?.remove();   // for 'done' the `message` event that follows draws it where it belongs
    return;
  }

  const item = messageItem({ user: entry.user ?? '', text: entry.text, seq: entry.seq, key: entry.key });
  item.dataset.send = entry.state;
  if (entry.state === 'failed') {
    const problem = document.createElement('span');
    problem.className = 'send-error';
    problem.textContent = `Not sent: ${entry.error}`;
    problem.append(actionButton('Retry', 'retry'), actionButton('Discard', 'discard'));
    item.append(problem);
  }

  if (shown) {
    shown.replaceWith(item);
  } else {
    insert(item, null);
  }
}

function actionButton(label, action) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = `link ${action}`;
  button.dataset.action = action;
  button.textContent = label;
  return button;
}

function messageItem(message) {
  const item = document.createElement('li');
  item.className = 'message';
  if (Number.isInteger(message.seq)) {
    item.dataset.seq = String(message.seq);
  }

  if (message.key) {
    item.dataset.key = message.key;
  }

  const sent = message.ts ? new Date(message.ts) : null;
  if (sent && !Number.isNaN(sent.getTime())) {
    item.dataset.time = timeFormat.format(sent);
    item.title = fullTimeFormat.format(sent);
  }

  const user = document.createElement('span');
  user.className = 'user';
  user.textContent = message.user;
  item.append(user, document.createTextNode(`: ${message.text}`));
  return item;
}

async function loadOlder() {
  if (loadingOlder || !hasOlder || oldestSeq === null || client.state !== 'connected') {
    return;
  }

  loadingOlder = true;
  try {
    const page = await client.history(oldestSeq, PAGE);
    if (page.epoch !== client.epoch) {
      hasOlder = false;   // the room's history restarted: nothing older belongs above these
      return;
    }

    const heightBefore = messages.scrollHeight;
    messages.prepend(...page.messages.map(messageItem));
    messages.scrollTop += messages.scrollHeight - heightBefore;   // keep the person's place
    hasOlder = page.more;
    if (page.messages.length > 0) {
      oldestSeq = page.messages[0].seq;
    }
  } catch (error) {
    feedback.textContent = error.message;
  } finally {
    loadingOlder = false;
  }
}

function showMembers() {
  memberList.replaceChildren(...[...members].sort().map((name) => {
    const item = document.createElement('span');
    item.className = 'member';
    item.textContent = name;
    return item;
  }));
}

function applyPresence({ user, present }) {
  if (present) {
    members.add(user);
  } else {
    members.delete(user);
  }
}

// The list as the server has it, then every presence frame that arrived while the request was out (they are newer
// than the list or already in it: applying them again in order gives the same end state).
async function refreshMembers() {
  const arrived = [];
  presenceDuringRefresh = arrived;
  try {
    const names = await client.members();
    if (presenceDuringRefresh !== arrived) {
      return;   // a newer refresh owns the list
    }

    members.clear();
    for (const name of names) {
      members.add(name);
    }

    arrived.forEach(applyPresence);
    showMembers();
  } catch {
    // best effort: presence frames keep the list going, and the next reconnect asks again
  } finally {
    if (presenceDuringRefresh === arrived) {
      presenceDuringRefresh = null;
    }
  }
}

function showNotice(text, kind) {
  const item = document.createElement('li');
  item.className = kind;
  item.textContent = text;
  append(item);
}

function showState(state) {
  const offline = state !== 'connected' && !navigator.onLine;
  const shown = offline ? 'offline' : state;
  statusBadge.dataset.state = shown;
  statusBadge.textContent = {
    connected: 'Connected',
    connecting: 'Connecting…',
    reconnecting: 'Reconnecting…',
    offline: 'Offline',
  }[shown];
}

function showQueued() {
  const count = client.queued;
  if (count === 0) {
    if (feedback.dataset.reason === 'queued') {
      setFeedback('', '');
    }

    return;
  }

  const what = count === 1 ? '1 message' : `${count} messages`;
  setFeedback(`Not connected yet: ${what} will be sent as soon as the connection is up.`, 'queued');
}

function setFeedback(text, reason) {
  feedback.textContent = text;
  feedback.dataset.reason = reason;
}

const listFormat = new Intl.ListFormat('en', { type: 'conjunction' });

function showTyping(users) {
  if (users.length === 0) {
    typingLine.textContent = '';
  } else if (users.length === 1) {
    typingLine.textContent = `${users[0]} is typing…`;
  } else {
    const named = users.length > 3 ? [...users.slice(0, 2), `${users.length - 2} others`] : users;
    typingLine.textContent = `${listFormat.format(named)} are typing…`;
  }
}

client.addEventListener('state', (event) => {
  showState(event.detail.state);
  showQueued();
});
client.addEventListener('message', (event) => showMessage(event.detail));
client.addEventListener('pending', (event) => {
  showPending(event.detail);
  showQueued();
});
client.addEventListener('typing', (event) => showTyping(event.detail.users));
client.addEventListener('notification', (event) => showNotice(event.detail.description, 'notification'));
client.addEventListener('presence', (event) => {
  applyPresence(event.detail);
  presenceDuringRefresh?.push(event.detail);
  showMembers();
});
let lastScrollTop = 0;
messages.addEventListener('scroll', () => {
  // Only when the person moves up to the top: the page's own jumps (to the newest message) never load.
  if (messages.scrollTop < 40 && messages.scrollTop < lastScrollTop) {
    loadOlder();
  }

  lastScrollTop = messages.scrollTop;
});
client.addEventListener('recovered', (event) => {
  refreshMembers();
  const { recovered, epochChanged } = event.detail;
  if (epochChanged) {
    showNotice('The room\'s history was reset on the server; the messages below start over.', 'system warning');
  } else if (!recovered) {
    showNotice('Some messages could not be recovered: the room\'s history no longer holds them.', 'system warning');
  }
});

addEventListener('online', () => client.retryNow());
addEventListener('offline', () => showState(client.state));

signinForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  // Messages sent from this moment on are kept for this sign-in, even while the page still waits to learn whether
  // the server wants a token; they are drawn in the list as they are sent.
  messages.replaceChildren();
  client.beginSignIn();
  const withToken = await tokensRequired;
  const user = withToken ? undefined : nameInput.value.trim();
  const room = roomInput.value.trim();
  if ((!withToken && !user) || !room) {
    client.stop();
    signinError.textContent = 'Enter your name and a room.';
    return;
  }

  signinButton.disabled = true;
  signinError.textContent = '';
  try {
    const ack = await client.signIn(user, room);
    roomHeading.textContent = ack.room ?? room;
    document.title = `${ack.room ?? room} · Chat`;
    const shown = (ack.messages ?? []).slice(-PAGE);
    for (const message of shown) {
      showMessage(message);
    }

    oldestSeq = shown.length > 0 ? shown[0].seq : null;
    hasOlder = oldestSeq !== null && oldestSeq > 1;
    signinView.hidden = true;
    chatroom.hidden = false;
    msgInput.focus();
    messages.lastElementChild?.scrollIntoView({ block: 'end' });
    refreshMembers();
    if (messages.scrollHeight <= messages.clientHeight) {
      loadOlder();   // nothing to scroll yet: fill the view
    }
  } catch (error) {
    signinError.textContent = error.message;
  } finally {
    signinButton.disabled = false;
  }
});

// The box empties at once, so people can type the next message while this one goes out; the message shows in the
// list as "sending…" until the room has it, or as failed with the reason. Before the sign-in is acknowledged, and
// while reconnecting, ChatClient keeps what is sent and sends it, in order, as soon as the connection is up.
chatForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = msgInput.value;
  if (!text.trim()) {
    setFeedback('Type a message first.', 'empty');
    return;
  }

  if (client.state === 'offline') {
    setFeedback('Not connected, so not sent. Your message stays in the box; sign in to send it.', 'offline');
    return;
  }

  msgInput.value = '';
  if (feedback.dataset.reason !== 'queued') {
    setFeedback('', '');
  }

  client.send(text);
  msgInput.focus();
});

// Retry and Discard on a failed message.
messages.addEventListener('click', (event) => {
  const button = event.target.closest('button[data-action]');
  const key = button?.closest('li[data-send]')?.dataset.key;
  if (key && button.dataset.action === 'retry') {
    client.retry(key);
  } else if (key) {
    client.discard(key);
  }
});

// The others see "… is typing…"; ChatClient sends at most one `typing` every 2 s however fast this fires.
msgInput.addEventListener('input', () => {
  if (msgInput.value.trim()) {
    client.typing();
  }
});

leaveButton.addEventListener('click', () => {
  client.stop();
  chatroom.hidden = true;
  signinView.hidden = false;
  setFeedback('', '');
  document.title = 'Chat';
  roomInput.focus();
});

showState(client.state);
