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
const searchForm = $('#search');
const searchInput = $('#search-q');
const searchPanel = $('#search-panel');
const searchStatus = $('#search-status');
const searchResults = $('#search-results');
const searchMore = $('#search-more');
const searchClose = $('#search-close');

// The page shows the newest PAGE messages of the history it gets on sign-in, and loads older ones from the server
// (`history`, protocol 1.2) when the person scrolls to the top: from the oldest message shown, by its `seq` and
// `epoch`, on into the room's older epochs (with the history database, past what Redis keeps) until the server says
// there is no more.
const PAGE = 50;
let olderThan = null;      // { seq, epoch } of the oldest message shown: where the next older page starts
let hasOlder = false;
let loadingOlder = false;
// Search (protocol 1.2): a panel in place of the list, newest first, SEARCH_PAGE results at a time.
const SEARCH_PAGE = 20;
let search = null;         // { q, after: { seq, epoch } of the last result shown }
let searchTicket = 0;      // answers to an older search (or one closed meanwhile) are dropped
let searching = false;     // a page of results is on its way: More results waits for it
let listPlace = null;      // where the list was scrolled when the panel took its place
const members = new Set();
let presenceDuringRefresh = null;   // presence frames that arrive while a `members` request is out, applied after it

const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
const client = new ChatClient(`${scheme}//${location.host}/ws`);
// The person's own locale and time zone: the time of day beside each message, the full date and time on hover.
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const fullTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });   // search results
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
  append(storedItem(message));
}

// A message the room has stored: the reader's own ones (not deleted, with the seq and epoch that name them) offer a
// delete control, whose label CSS draws (aria-label names it), so the text stays "user: text".
function storedItem(message) {
  const item = messageItem(message);
  if (!message.deleted && message.user === client.user && Number.isInteger(message.seq) && typeof message.epoch === 'string') {
    item.append(deleteButton());
  }

  return item;
}

function deleteButton() {
  const button = actionButton('', 'delete');
  button.setAttribute('aria-label', 'Delete message');
  button.title = 'Delete message';
  return button;
}

function tombstoneText() {
  const text = document.createElement('span');
  text.className = 'tombstone';
  text.textContent = 'message deleted';
  return text;
}

// Every item of that message, in the list and among search results: its text gives way to "message deleted".
function showDeleted({ seq, epoch }) {
  if (!Number.isInteger(seq) || typeof epoch !== 'string') {
    return;
  }

  for (const item of document.querySelectorAll(`li.message:not([data-send])[data-epoch="${CSS.escape(epoch)}"][data-seq="${seq}"]`)) {
    const hadFocus = item.contains(document.activeElement);
    const user = item.querySelector('.user');
    item.replaceChildren(...(user ? [user] : []), document.createTextNode(': '), tombstoneText());
    item.classList.add('deleted');
    delete item.dataset.key;
    if (hadFocus) {
      msgInput.focus();   // its controls are gone
    }
  }
}

// Deleting one's own message asks first, in the item itself: "Delete? Yes No", No focused, Escape for No.
function askToDelete(item) {
  const confirm = document.createElement('span');
  confirm.className = 'confirm-delete';
  confirm.setAttribute('role', 'group');
  confirm.setAttribute('aria-label', 'Delete this message?');
  const question = document.createElement('span');
  question.className = 'question';
  question.textContent = 'Delete?';
  const no = actionButton('No', 'keep');
  confirm.append(question, actionButton('Yes', 'confirm-delete'), no);
  item.querySelector('button.delete')?.replaceWith(confirm);
  no.focus();
}

function keepMessage(item) {
  const button = deleteButton();
  item.querySelector('.confirm-delete')?.replaceWith(button);
  button.focus();
}

async function deleteOwn(item) {
  const confirm = item.querySelector('.confirm-delete');
  confirm.querySelector('.question').textContent = 'Deleting…';
  for (const button of confirm.querySelectorAll('button')) {
    button.disabled = true;
  }

  const seq = Number(item.dataset.seq);
  const { epoch } = item.dataset;
  try {
    await client.deleteMessage(seq, epoch);
    showDeleted({ seq, epoch });   // its `deleted` frame does the same, whichever comes first
  } catch (error) {
    if (item.isConnected && !item.classList.contains('deleted')) {
      keepMessage(item);
    }

    setFeedback(`Not deleted: ${error.message}`, 'delete');
  }
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

// A message is named by (epoch, seq): seq starts over in each epoch. A tombstone (deleted: true) has no text.
function messageItem(message, format = timeFormat) {
  const item = document.createElement('li');
  item.className = 'message';
  if (Number.isInteger(message.seq)) {
    item.dataset.seq = String(message.seq);
  }

  if (typeof message.epoch === 'string') {
    item.dataset.epoch = message.epoch;
  }

  if (message.key) {
    item.dataset.key = message.key;
  }

  const sent = message.ts ? new Date(message.ts) : null;
  if (sent && !Number.isNaN(sent.getTime())) {
    item.dataset.time = format.format(sent);
    item.title = fullTimeFormat.format(sent);
  }

  const user = document.createElement('span');
  user.className = 'user';
  user.textContent = message.user;
  if (message.deleted) {
    item.classList.add('deleted');
    item.append(user, document.createTextNode(': '), tombstoneText());
  } else {
    item.append(user, document.createTextNode(`: ${message.text}`));
  }

  return item;
}

function isShown(message) {
  return Number.isInteger(message.seq) && typeof message.epoch === 'string'
    && messages.querySelector(`li.message:not([data-send])[data-epoch="${CSS.escape(message.epoch)}"][data-seq="${message.seq}"]`) !== null;
}

// The next page above the oldest message shown; messages of an older epoch come above, in order. Each is drawn once
// (by epoch and seq). While the list cannot scroll yet, the next page follows at once.
async function loadOlder() {
  if (loadingOlder || !hasOlder || olderThan === null || client.state !== 'connected') {
    return;
  }

  loadingOlder = true;
  const from = olderThan;
  let fill = false;
  try {
    const page = await client.history(from.seq, from.epoch, PAGE);
    if (from !== olderThan) {
      return;   // signed in again meanwhile: another list
    }

    const heightBefore = messages.scrollHeight;
    messages.prepend(...page.messages.filter((m) => !isShown(m)).map(storedItem));
    messages.scrollTop += messages.scrollHeight - heightBefore;   // keep the person's place
    hasOlder = page.more && page.messages.length > 0;
    if (page.messages.length > 0) {
      olderThan = { seq: page.messages[0].seq, epoch: page.messages[0].epoch ?? from.epoch };
    }

    fill = hasOlder && !messages.hidden && messages.scrollHeight <= messages.clientHeight;
  } catch (error) {
    if (from === olderThan) {
      setFeedback(error.message, 'history');
    }
  } finally {
    loadingOlder = false;
  }

  if (fill) {
    loadOlder();
  }
}

function openSearchPanel() {
  if (searchPanel.hidden) {
    listPlace = { top: messages.scrollTop, atBottom: atBottom() };
    messages.hidden = true;
    searchPanel.hidden = false;
  }
}

// Back to the chat, where the list was (at its end if it was there: what came meanwhile shows).
function closeSearch() {
  searchTicket += 1;
  searching = false;
  search = null;
  searchResults.replaceChildren();
  setSearchStatus('', '');
  searchMore.hidden = true;
  if (!searchPanel.hidden) {
    searchPanel.hidden = true;
    messages.hidden = false;
    messages.scrollTop = listPlace?.atBottom ? messages.scrollHeight : (listPlace?.top ?? messages.scrollHeight);
    lastScrollTop = messages.scrollTop;
  }
}

function setSearchStatus(text, kind) {
  searchStatus.textContent = text;
  searchStatus.className = kind;
}

// One page of results, below those shown; "More results" goes on from the last one (its seq and epoch).
async function runSearch() {
  const current = search;
  const ticket = ++searchTicket;
  searching = true;
  setSearchStatus('Searching…', '');
  try {
    const page = await client.search(current.q, { before: current.after?.seq, epoch: current.after?.epoch, limit: SEARCH_PAGE });
    if (ticket !== searchTicket) {
      return;
    }

    searchResults.append(...page.messages.filter((m) => !m.deleted).map((m) => messageItem(m, dateTimeFormat)));
    const last = page.messages.at(-1);
    if (last) {
      current.after = { seq: last.seq, epoch: last.epoch };
    }

    const count = searchResults.children.length;
    searchMore.hidden = !(page.more && last);
    setSearchStatus(count === 0
      ? `No messages match “${current.q}”.`
      : `${count === 1 ? '1 message matches' : `${count} messages match`} “${current.q}”, newest first.`, '');
  } catch (error) {
    if (ticket === searchTicket) {
      setSearchStatus(error.message, 'error');   // the server's words, e.g. that search needs the history database
    }
  } finally {
    if (ticket === searchTicket) {
      searching = false;
      if (searchMore.hidden && document.activeElement === searchMore) {
        searchClose.focus();   // the button the person was on is gone: the next useful one
      }
    }
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
client.addEventListener('deleted', (event) => showDeleted(event.detail));
client.addEventListener('removed', (event) => showNotice(event.detail.reason, 'system warning'));
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
  olderThan = null;
  hasOlder = false;
  closeSearch();
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

    // Older pages start above the oldest message shown; with none, above the current epoch's first (older epochs).
    olderThan = shown.length > 0 ? { seq: shown[0].seq, epoch: shown[0].epoch ?? ack.epoch } : { seq: 1, epoch: ack.epoch };
    hasOlder = true;   // the server's `more` says when the room's first kept message is reached
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

// Retry and Discard on a failed message; Delete (then Yes or No) on one of the reader's own.
messages.addEventListener('click', (event) => {
  const button = event.target.closest('button[data-action]');
  const item = button?.closest('li');
  if (!item) {
    return;
  }

  const { action } = button.dataset;
  const key = item.dataset.send ? item.dataset.key : null;
  if (key && action === 'retry') {
    client.retry(key);
  } else if (key && action === 'discard') {
    client.discard(key);
  } else if (action === 'delete') {
    askToDelete(item);
  } else if (action === 'confirm-delete') {
    deleteOwn(item);
  } else if (action === 'keep') {
    keepMessage(item);
  }
});

messages.addEventListener('keydown', (event) => {
  const item = event.target.closest?.('li');
  if (event.key === 'Escape' && item?.querySelector('.confirm-delete button:enabled')) {
    keepMessage(item);
  }
});

// Search: Enter or the button; More results; Close search goes back to the chat.
searchForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const q = searchInput.value.trim();
  openSearchPanel();
  searchResults.replaceChildren();
  searchMore.hidden = true;
  if (!q) {
    searchTicket += 1;
    searching = false;
    search = null;
    setSearchStatus('Type the words to look for.', 'error');
    return;
  }

  search = { q, after: null };
  runSearch();
});

searchMore.addEventListener('click', () => {
  if (search && !searching) {
    runSearch();
  }
});

searchClose.addEventListener('click', () => {
  closeSearch();
  searchInput.value = '';
  msgInput.focus();
});

// The others see "… is typing…"; ChatClient sends at most one `typing` every 2 s however fast this fires.
msgInput.addEventListener('input', () => {
  if (msgInput.value.trim()) {
    client.typing();
  }
});

leaveButton.addEventListener('click', () => {
  client.stop();
  closeSearch();
  searchInput.value = '';
  chatroom.hidden = true;
  signinView.hidden = false;
  setFeedback('', '');
  document.title = 'Chat';
  roomInput.focus();
});

showState(client.state);
