import NIOCore
import RESP

/// The rules of one connection, apart from its socket: when the next command may run, the
/// order its replies go out in, when to stop reading, and when to close. `ClientHandler` feeds
/// it events and carries out what it answers; it is tested without a channel.
///
/// - A client's commands take effect in the order it sent them. A read of keys may run while
///   earlier commands' replies are still to come (those replies wait here, in order); any other
///   command is held until every earlier reply is out.
/// - A client's command whose reply comes later and that is not such a read (a write forwarded
///   to its coordinator, or waiting for replicas or fsync) stops the connection until it answers.
/// - A peer's commands (another node forwarding many clients' commands) all run at once, replies
///   in order, up to `maxOutstanding` at a time.
/// - A write that arrives while the disk tier's write queue is full is held and retried after a
///   pause, so a fast writer cannot grow the node's memory.
/// - After a protocol error nothing more is parsed: what was received before it still runs and
///   answers, then the error is sent and the connection closes. At shutdown (quiescing) the
///   connection closes once what it has received has answered.
struct ConnectionStateMachine {
    enum State: Equatable {
        /// Commands run as they are parsed.
        case running
        /// A command's reply must come before anything after it runs.
        case awaitingReply
        /// The held command runs once every earlier reply is out.
        case awaitingEarlierReplies
        /// The held write runs after a pause (the disk tier's write queue is full).
        case backpressured
        /// A peer has `maxOutstanding` commands running; more run once half have answered.
        case tooManyOutstanding
        /// Closing or closed: nothing more runs and late replies are dropped.
        case closed
    }

    /// What the handler runs next.
    enum Next {
        /// A command that was held back: run it (it is admitted again first).
        case held(RESPCommand)
        /// Parse the next command from the input.
        case parse
        /// Nothing may run now.
        case wait
    }

    /// Whether a parsed command runs now.
    enum Admission: Equatable {
        case run
        /// Held until the disk tier catches up: call `pauseEnded()` after a short pause.
        case pause
        /// Held until every earlier reply is out.
        case hold
    }

    /// Which kind of command the handler is about to run.
    struct CommandKind: Equatable {
        /// Changes data.
        var isWrite: Bool
        /// A read of keys: may run while earlier replies are still to come.
        var isConcurrentRead: Bool

        static let write = CommandKind(isWrite: true, isConcurrentRead: false)
        static let read = CommandKind(isWrite: false, isConcurrentRead: true)
        static let other = CommandKind(isWrite: false, isConcurrentRead: false)
    }

    /// What to do once the handler has nothing to run.
    enum Settled: Equatable {
        case none
        /// Write this error, then close (a protocol error, after everything before it answered).
        case closeWithError(String)
        /// Close once the output is written (shutdown).
        case close
    }

    /// Replies that became ready, in order, and whether commands may run again.
    struct Drained {
        var replies: [ByteBuffer] = []
        var resume = false
    }

    private(set) var state = State.running
    /// Another node's connection (set by STRATA.PEER).
    var isPeer = false
    private var held: RESPCommand?
    private(set) var protocolError: String?
    private(set) var quiescing = false
    /// Replies from the first one still to come on, in order; nil: not yet there.
    private var replies = CircularBuffer<ByteBuffer?>()
    /// The ticket of `replies.first`.
    private var repliesBase = 0
    private var readWithheld = false
    let maxOutstanding: Int
    let readAheadLimit: Int

    init(maxOutstanding: Int = 4096, readAheadLimit: Int = 64 << 10) {
        self.maxOutstanding = maxOutstanding
        self.readAheadLimit = readAheadLimit
    }

    /// Earlier replies are still to come: a reply ready now must queue behind them.
    var hasPendingReplies: Bool { !replies.isEmpty }
    /// Nothing is running and nothing is held.
    var isIdle: Bool { state == .running && held == nil && replies.isEmpty }

    // MARK: Running commands

    /// What may run next.
    mutating func next() -> Next {
        guard state == .running else { return .wait }
        if let command = held {
            held = nil
            return .held(command)
        }
        return protocolError == nil ? .parse : .wait
    }

    /// Decides whether `command` runs now; if not, keeps it until it may.
    mutating func admit(_ command: RESPCommand, kind: CommandKind, writeBacklogged: Bool) -> Admission {
        // Checked in debug builds; a release node carries on rather than crash on a bug here.
        assert(state == .running, "a command was admitted while the connection was \(state)")
        if writeBacklogged && kind.isWrite {
            held = command
            state = .backpressured
            return .pause
        }
        if !isPeer && !replies.isEmpty && !kind.isConcurrentRead {
            held = command
            state = .awaitingEarlierReplies
            return .hold
        }
        return .run
    }

    /// The pause of a backpressured write is over: it is tried again.
    mutating func pauseEnded() {
        if state == .backpressured { state = .running }
    }

    /// A command answered at once but an earlier reply is still to come: `reply` waits behind it.
    mutating func queueReady(_ reply: ByteBuffer) {
        assert(!replies.isEmpty, "a ready reply is queued only behind a pending one")
        replies.append(reply)
        limitOutstanding()
    }

    /// A command's reply will come later; it keeps its place in line. Returns the ticket to
    /// hand to `arrived(_:_:)`.
    mutating func replyPending() -> Int {
        let ticket = repliesBase + replies.count
        replies.append(nil)
        limitOutstanding()
        return ticket
    }

    /// A command whose reply comes later stops the connection until it answers (`answered()`).
    mutating func awaitReply() {
        assert(state == .running && replies.isEmpty, "a blocking command runs only when nothing is pending")
        state = .awaitingReply
    }

    /// The reply of the command that stopped the connection arrived; returns whether it is
    /// still open (write the reply, then run on).
    mutating func answered() -> Bool {
        guard state != .closed else { return false }
        assert(state == .awaitingReply, "an awaited reply arrived while the connection was \(state)")
        state = .running
        return true
    }

    /// The reply for `ticket` arrived: gives the replies now ready to go out, in order.
    mutating func arrived(_ ticket: Int, _ reply: ByteBuffer) -> Drained {
        var drained = Drained()
        let position = ticket - repliesBase
        guard state != .closed, position >= 0, position < replies.count else { return drained }
        replies[replies.index(replies.startIndex, offsetBy: position)] = reply
        while let first = replies.first, let ready = first {
            replies.removeFirst()
            repliesBase += 1
            drained.replies.append(ready)
        }
        switch state {
        case .awaitingEarlierReplies where replies.isEmpty,
            .tooManyOutstanding where replies.count < maxOutstanding / 2:
            state = .running
            drained.resume = true
        case .running where replies.isEmpty && (protocolError != nil || quiescing):
            drained.resume = true  // the handler settles the connection
        default:
            break
        }
        return drained
    }

    private mutating func limitOutstanding() {
        if replies.count >= maxOutstanding && state == .running { state = .tooManyOutstanding }
    }

    // MARK: Ending

    /// The input is malformed: parse nothing more; close once what came before has answered.
    mutating func protocolErrorSeen(_ message: String) {
        if protocolError == nil { protocolError = message }
    }

    /// The node is shutting down: close once what was received has answered.
    mutating func quiesce() {
        quiescing = true
    }

    /// The handler has run all it may for now (the input holds no whole command, or nothing
    /// may run): whether the connection should close.
    mutating func settle() -> Settled {
        guard isIdle else { return .none }
        if let protocolError {
            state = .closed
            return .closeWithError(protocolError)
        }
        if quiescing {
            state = .closed
            return .close
        }
        return .none
    }

    /// The connection closes (QUIT, the client left, or an I/O error).
    mutating func close() {
        state = .closed
        held = nil
        replies.removeAll()
    }

    // MARK: Reading

    /// Whether to read more from the socket now. A connection reads nothing while its output
    /// is backed up, after a protocol error, or while it is stopped with a full read-ahead.
    mutating func shouldRead(writable: Bool, buffered: Int) -> Bool {
        if !writable || protocolError != nil || state == .closed || (state != .running && buffered >= readAheadLimit) {
            readWithheld = true
            return false
        }
        return true
    }

    /// Whether a read that was withheld should be made now.
    mutating func shouldResumeReading(writable: Bool) -> Bool {
        guard readWithheld, writable, protocolError == nil, state == .running else { return false }
        readWithheld = false
        return true
    }
}
