// What the page knows: the chats, their events (each chat+seq once), claims, unread counts
// and reply deadlines. Views subscribe to changes; nothing here touches the DOM.

const REPLY_WINDOW_MS = 10 * 24 * 3600 * 1000;

const CLAIM_STATE_OF_KIND = {
  'return.requested': 'requested',
  'return.initiated': 'awaiting_buyer',
  'return.approved': 'approved',
  'return.rejected': 'rejected',
  'return.disputed': 'disputed',
  // Version 1.1: a request the shop left undecided goes to the managers as a dispute does;
  // an offer the buyer never took up ends.
  'return.escalated': 'disputed',
  'return.withdrawn': 'closed',
  'return.expired': 'closed',
  'return.handed_in': 'handed_in',
  'return.arrived': 'arrived',
  'return.inspected': 'inspected',
};

// A shop's message, approval, refusal or offer answers everything the buyer wrote before.
const SHOP_ANSWERS = new Set(['return.approved', 'return.rejected', 'return.initiated']);
// The shop's own work (protocol 1.1): the buyer never receives these, so they answer nothing,
// are nobody's to read, and are not what a chat summary's state counts up to. A buyer meets
// gaps in `seq` where they stand; nothing here asks for what is missing.
const SHOP_ONLY = new Set(['note', 'chat.assigned']);

export function sideOf(author) {
  if (author.role === 'buyer') return 'buyer';
  if (author.role === 'seller') return 'seller';
  return 'system';
}

function newChat(id) {
  return {
    id,
    buyer: null,
    seller: null,
    last: null,
    unread: 0,
    replyDue: null,
    claims: new Map(), // claim id -> {claim, order, state}
    stateSeq: 0, // claims, replyDue and unread reflect the chat up to this seq
    events: new Map(), // seq -> event
    orders: new Map(), // order id -> card, from events and the attachments answer
    amounts: new Map(), // claim id -> money asked back
    claimEvents: new Map(), // claim id -> Map(kind -> event): its request, refusal, decision…
    loaded: false, // the newest page of history is in
    more: true, // older events exist that are not loaded
    readSent: 0, // the last read mark this page sent
    stub: false, // known only from a live event; its summary is on its way
    assignee: null, // the operator who has the chat ({id, name}), for the shop's view
    online: null, // {buyer, seller}: which side is connected now (1.1; presence.js)
  };
}

export class Store extends EventTarget {
  constructor() {
    super();
    this.user = null;
    this.chats = new Map();
    this.viewing = null; // the chat open on the screen, whose new events are read at once
    this.nextPage = null; // `before` of the chat list's next page
    this.pending = new Set(); // chats whose change is not announced yet
    this.announceScheduled = false;
    this.clockSkew = 0; // the server's clock minus this machine's, in ms
    this.assignments = false; // the server tells who has each chat (summaries' `assignee`)
  }

  get role() {
    return this.user?.role || null;
  }

  /** `buyer` or `seller` for the chat's two sides; null for a manager. */
  get side() {
    return this.role === 'buyer' || this.role === 'seller' ? this.role : null;
  }

  setUser(user) {
    this.user = user;
  }

  /** The server's time from `welcome`: deadlines and the return window are its, not this
   * machine's, whose clock may be off. */
  setServerTime(serverTime) {
    const at = Date.parse(serverTime);
    if (!Number.isNaN(at)) this.clockSkew = at - Date.now();
  }

  /** Now, by the server's clock (ms). */
  now() {
    return Date.now() + this.clockSkew;
  }

  chat(id) {
    let chat = this.chats.get(id);
    if (!chat) {
      chat = newChat(id);
      this.chats.set(id, chat);
    }
    return chat;
  }

  /** Forgets everything (after `bad_cursor`): the chats are loaded again. */
  reset() {
    this.chats.clear();
    this.nextPage = null;
    this.changed(null);
  }

  /** The chats, most recent activity first. */
  sortedChats() {
    return [...this.chats.values()]
      .filter((chat) => chat.buyer && chat.seller)
      .sort((a, b) => {
        const at = (chat) => (chat.last ? Date.parse(chat.last.at) : 0);
        return at(b) - at(a) || (b.last?.seq || 0) - (a.last?.seq || 0);
      });
  }

  // ---- input from the server -----------------------------------------------------------------

  summary(summary) {
    const chat = this.chat(summary.chat);
    chat.buyer = summary.buyer;
    chat.seller = summary.seller;
    chat.stub = false;
    const summarySeq = summary.last ? summary.last.seq : 0;
    if (summarySeq >= chat.stateSeq) {
      chat.claims = new Map(summary.claims.map((c) => [c.claim, { ...c }]));
      chat.replyDue = summary.reply_due;
      chat.unread = this.side ? summary.unread : 0;
      if ('assignee' in summary) {
        chat.assignee = summary.assignee || null;
        this.assignments = true;
      }
      chat.stateSeq = summarySeq;
      if (summary.last) this.remember(chat, summary.last);
    }
    if (summary.last && (!chat.last || summary.last.seq >= chat.last.seq)) chat.last = summary.last;
    if (summary.online) chat.online = { ...summary.online }; // the state now, whatever the seq
    if (this.viewing === chat.id) chat.unread = 0;
    this.changed(chat.id);
  }

  /** Events from `history` (or search): they never change counts, only fill the chat.
   * `before` is the seq the page was asked before, undefined for the newest page. */
  history(chatId, events, more, before) {
    const chat = this.chat(chatId);
    const oldestBefore = this.oldestSeq(chat);
    for (const event of events) this.remember(chat, event);
    if (before === undefined) chat.loaded = true;
    if (!events.length || events[0].seq <= oldestBefore) {
      chat.more = more && this.oldestSeq(chat) > 1;
    }
    for (const event of events) this.advance(chat, event, false);
    this.changed(chat.id);
  }

  /** A live (or replayed) event; false when it was already handled. */
  event(event) {
    const chat = this.chat(event.chat);
    if (chat.events.has(event.seq) || event.seq <= chat.stateSeq) return false;
    if (!chat.buyer && event.kind === 'chat.opened') {
      chat.buyer = event.data.buyer;
      chat.seller = event.data.seller;
    }
    if (!chat.buyer) chat.stub = true;
    this.remember(chat, event);
    // The shop's own events are no chat's `last`, as in the summaries: they move no chat up.
    if (!SHOP_ONLY.has(event.kind) && (!chat.last || event.seq > chat.last.seq)) chat.last = event;
    if (event.kind === 'chat.assigned') {
      chat.assignee = event.data?.operator || null;
      this.assignments = true;
    }
    this.advance(chat, event, true);
    this.changed(chat.id);
    return true;
  }

  read(frame) {
    if (!this.chats.has(frame.chat) || frame.side !== this.side) return;
    const chat = this.chat(frame.chat);
    chat.readSent = Math.max(chat.readSent, frame.seq);
    if (!chat.last || frame.seq >= chat.last.seq) {
      chat.unread = 0;
    } else if (this.oldestSeq(chat) <= frame.seq + 1) {
      chat.unread = [...chat.events.values()].filter(
        (e) => e.seq > frame.seq && e.text && sideOf(e.author) !== this.side,
      ).length;
    }
    this.changed(chat.id);
  }

  attachments(answer) {
    const chat = this.chat(answer.chat);
    for (const entry of answer.orders) {
      chat.orders.set(entry.order.id, entry.order);
      if (entry.claim && entry.state) {
        const known = chat.claims.get(entry.claim);
        if (!known) chat.claims.set(entry.claim, { claim: entry.claim, order: entry.order.id, state: entry.state });
      }
    }
    this.changed(chat.id);
  }

  // ---- derived ---------------------------------------------------------------------------------

  oldestSeq(chat) {
    let oldest = Infinity;
    for (const seq of chat.events.keys()) oldest = Math.min(oldest, seq);
    return oldest;
  }

  lastSeq(chat) {
    let newest = chat.last ? chat.last.seq : 0;
    for (const seq of chat.events.keys()) newest = Math.max(newest, seq);
    return newest;
  }

  sortedEvents(chat) {
    return [...chat.events.values()].sort((a, b) => a.seq - b.seq);
  }

  claimOfOrder(chat, orderId) {
    for (const claim of chat.claims.values()) if (claim.order === orderId) return claim;
    return null;
  }

  /** The claim's event of `kind` (its request, refusal, escalation…) when it is loaded. */
  claimEvent(chat, claimId, kind) {
    return chat.claimEvents.get(claimId)?.get(kind) || null;
  }

  // ---- internals -------------------------------------------------------------------------------

  remember(chat, event) {
    chat.events.set(event.seq, event);
    const data = event.data || {};
    if (data.order && typeof data.order === 'object') chat.orders.set(data.order.id, data.order);
    if (data.claim && data.amount) chat.amounts.set(data.claim, data.amount);
    if (data.claim && (event.kind.startsWith('return.') || event.kind === 'refund.issued')) {
      if (!chat.claimEvents.has(data.claim)) chat.claimEvents.set(data.claim, new Map());
      chat.claimEvents.get(data.claim).set(event.kind, event);
    }
    if (data.claim && data.order && typeof data.order === 'object') {
      const claim = chat.claims.get(data.claim);
      if (claim && !claim.order) claim.order = data.order.id;
    }
  }

  /** Moves claims, reply deadline and unread count past `event` (once, in seq order). */
  advance(chat, event, live) {
    if (event.seq <= chat.stateSeq || SHOP_ONLY.has(event.kind)) return;
    chat.stateSeq = event.seq;
    const data = event.data || {};
    let state = CLAIM_STATE_OF_KIND[event.kind];
    if (event.kind === 'return.resolved') {
      state = data.decision === 'approve' ? 'resolved_approved' : 'resolved_rejected';
    }
    if (state && data.claim) {
      const claim = chat.claims.get(data.claim) || { claim: data.claim, order: null, state };
      if (data.order && typeof data.order === 'object') claim.order = data.order.id;
      claim.state = state;
      chat.claims.set(data.claim, claim);
    }
    const side = sideOf(event.author);
    if (side === 'seller' || SHOP_ANSWERS.has(event.kind)) {
      chat.replyDue = null;
    } else if (side === 'buyer' && !chat.replyDue) {
      chat.replyDue = new Date(Date.parse(event.at) + REPLY_WINDOW_MS).toISOString();
    }
    if (live && this.side && event.text && side !== this.side && this.viewing !== chat.id) {
      chat.unread += 1;
    }
  }

  changed(chatId) {
    this.pending.add(chatId);
    if (this.announceScheduled) return;
    this.announceScheduled = true;
    queueMicrotask(() => {
      this.announceScheduled = false;
      const chats = [...this.pending];
      this.pending.clear();
      this.dispatchEvent(new CustomEvent('change', { detail: { chats } }));
    });
  }
}
