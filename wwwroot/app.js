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

// The page shows the newest PAGE messages of the history it gets on sign-in, and loads older ones from the server
// (the `history` extension) when the person scrolls to the top.
const PAGE = 50;
let oldestSeq = null;
let hasOlder = false;
let loadingOlder = false;
const members = new Set();

const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
const client = new ChatClient(`${scheme}//${location.host}/ws`);
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
let sending = false;
// With authentication on (auth.js), the name comes from the token: the name field is hidden and not sent.
const tokensRequired = setUpAuth(client, { nameInput, identityLabel: $('#identity') });

function atBottom() {
  return messages.scrollHeight - messages.scrollTop - messages.clientHeight < 40;
}

function append(item) {
  const follow = atBottom();
  messages.append(item);
  if (follow) {
    item.scrollIntoView({ block: 'end' });
  }
}

// The item's text is exactly "user: text" (the time is an attribute), as Google's sample test reads it.
function showMessage(message) {
  append(messageItem(message));
}

function messageItem(message) {
  const item = document.createElement('li');
  item.className = 'message';
  item.dataset.seq = String(message.seq);
  if (message.ts) {
    item.title = timeFormat.format(new Date(message.ts));
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

async function refreshMembers() {
  try {
    members.clear();
    for (const name of await client.members()) {
      members.add(name);
    }

    showMembers();
  } catch {
    // best effort: presence frames keep the list going, and the next reconnect asks again
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

client.addEventListener('state', (event) => {
  showState(event.detail.state);
  if (event.detail.state === 'connected' && feedback.dataset.reason === 'offline') {
    feedback.textContent = msgInput.value ? 'Connected again: press Send to send your message.' : '';
    feedback.dataset.reason = '';
  }
});
client.addEventListener('message', (event) => showMessage(event.detail));
client.addEventListener('notification', (event) => showNotice(event.detail.description, 'notification'));
client.addEventListener('presence', (event) => {
  if (event.detail.present) {
    members.add(event.detail.user);
  } else {
    members.delete(event.detail.user);
  }

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
  const withToken = await tokensRequired;
  const user = withToken ? undefined : nameInput.value.trim();
  const room = roomInput.value.trim();
  if ((!withToken && !user) || !room) {
    signinError.textContent = 'Enter your name and a room.';
    return;
  }

  signinButton.disabled = true;
  signinError.textContent = '';
  messages.replaceChildren();
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

chatForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = msgInput.value;
  if (sending) {
    return;
  }

  if (!text.trim()) {
    feedback.textContent = 'Type a message first.';
    return;
  }

  if (client.state !== 'connected') {
    // Nothing is queued behind the person's back: the text stays in the box until it can really be sent.
    feedback.textContent = 'Not connected, so not sent. Your message stays in the box; press Send again once connected.';
    feedback.dataset.reason = 'offline';
    return;
  }

  sending = true;
  feedback.textContent = '';
  try {
    await client.send(text);
    if (msgInput.value === text) {
      msgInput.value = '';
    }
  } catch (error) {
    feedback.textContent = `Not sent: ${error.message}`;
  } finally {
    sending = false;
    msgInput.focus();
  }
});

leaveButton.addEventListener('click', () => {
  client.stop();
  chatroom.hidden = true;
  signinView.hidden = false;
  feedback.textContent = '';
  document.title = 'Chat';
  roomInput.focus();
});

showState(client.state);
