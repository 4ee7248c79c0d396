import NIOCore
import RESP
import Testing

@testable import StrataServer

/// The connection's rules, driven event by event without a channel.
@Suite struct ConnectionStateMachineTests {
    private func command(_ words: String...) -> RESPCommand {
        RESPCommand(arguments: words.map { ByteBuffer(string: $0) })
    }

    private func text(_ buffers: [ByteBuffer]) -> [String] { buffers.map { String(buffer: $0) } }

    @Test func aFreshConnectionParsesAndRunsCommands() {
        var machine = ConnectionStateMachine()
        guard case .parse = machine.next() else { Issue.record("expected .parse"); return }
        #expect(machine.admit(command("GET", "k"), kind: .read, writeBacklogged: false) == .run)
        #expect(machine.isIdle)
        #expect(machine.settle() == .none)
    }

    @Test func repliesGoOutInOrderWhenALaterOneIsReadyFirst() {
        var machine = ConnectionStateMachine()
        let first = machine.replyPending()
        let second = machine.replyPending()
        machine.queueReady(ByteBuffer(string: "third"))
        // The second answers first: nothing may go out before the first.
        let early = machine.arrived(second, ByteBuffer(string: "second"))
        #expect(early.replies.isEmpty)
        let rest = machine.arrived(first, ByteBuffer(string: "first"))
        #expect(text(rest.replies) == ["first", "second", "third"])
        #expect(!machine.hasPendingReplies)
    }

    @Test func aClientsWriteWaitsForItsEarlierReads() {
        var machine = ConnectionStateMachine()
        let read = machine.replyPending()
        let write = command("SET", "k", "v")
        #expect(machine.admit(write, kind: .write, writeBacklogged: false) == .hold)
        #expect(machine.state == .awaitingEarlierReplies)
        guard case .wait = machine.next() else { Issue.record("a held write must not run yet"); return }
        let drained = machine.arrived(read, ByteBuffer(string: "v0"))
        #expect(text(drained.replies) == ["v0"])
        #expect(drained.resume)
        guard case .held(let again) = machine.next() else { Issue.record("the held write runs next"); return }
        #expect(again.arguments.map { String(buffer: $0) } == ["SET", "k", "v"])
        #expect(machine.admit(again, kind: .write, writeBacklogged: false) == .run)
    }

    @Test func aClientsReadsRunWhileEarlierReadsAreStillToCome() {
        var machine = ConnectionStateMachine()
        _ = machine.replyPending()
        #expect(machine.admit(command("GET", "b"), kind: .read, writeBacklogged: false) == .run)
        #expect(machine.admit(command("PING"), kind: .other, writeBacklogged: false) == .hold)
    }

    @Test func aPeersCommandsNeverWaitForEarlierReplies() {
        var machine = ConnectionStateMachine()
        machine.isPeer = true
        _ = machine.replyPending()
        #expect(machine.admit(command("SET", "k", "v"), kind: .write, writeBacklogged: false) == .run)
        #expect(machine.admit(command("STRATA.HEARTBEAT", "1"), kind: .other, writeBacklogged: false) == .run)
    }

    @Test func aWriteIsPausedWhileTheDiskTierIsBehindAndThenRetried() {
        var machine = ConnectionStateMachine()
        let write = command("SET", "k", "v")
        #expect(machine.admit(write, kind: .write, writeBacklogged: true) == .pause)
        #expect(machine.state == .backpressured)
        guard case .wait = machine.next() else { Issue.record("nothing runs during the pause"); return }
        machine.pauseEnded()
        guard case .held(let again) = machine.next() else { Issue.record("the paused write is tried again"); return }
        // Still behind: paused again; caught up: runs.
        #expect(machine.admit(again, kind: .write, writeBacklogged: true) == .pause)
        machine.pauseEnded()
        guard case .held(let third) = machine.next() else { Issue.record("tried a third time"); return }
        #expect(machine.admit(third, kind: .write, writeBacklogged: false) == .run)
    }

    @Test func readsAreNotPausedByAFullWriteQueue() {
        var machine = ConnectionStateMachine()
        #expect(machine.admit(command("GET", "k"), kind: .read, writeBacklogged: true) == .run)
    }

    @Test func aBlockingReplyStopsTheConnectionUntilItArrives() {
        var machine = ConnectionStateMachine()
        machine.awaitReply()
        guard case .wait = machine.next() else { Issue.record("nothing runs while a write is answered"); return }
        #expect(machine.answered() == true)
        guard case .parse = machine.next() else { Issue.record("running again"); return }
    }

    @Test func aReplyAfterTheConnectionClosedIsDropped() {
        var machine = ConnectionStateMachine()
        let ticket = machine.replyPending()
        machine.close()
        #expect(machine.arrived(ticket, ByteBuffer(string: "late")).replies.isEmpty)
        #expect(machine.answered() == false)
        guard case .wait = machine.next() else { Issue.record("a closed connection runs nothing"); return }
    }

    @Test func aProtocolErrorMidPipelineClosesAfterEarlierRepliesAreOut() {
        var machine = ConnectionStateMachine()
        let pending = machine.replyPending()
        machine.protocolErrorSeen("ERR Protocol error: invalid multibulk length")
        machine.protocolErrorSeen("ERR a second error is not the one reported")
        guard case .wait = machine.next() else { Issue.record("nothing more is parsed"); return }
        #expect(machine.settle() == .none)  // an earlier reply is still to come
        let drained = machine.arrived(pending, ByteBuffer(string: "earlier"))
        #expect(text(drained.replies) == ["earlier"])
        #expect(drained.resume)
        #expect(machine.settle() == .closeWithError("ERR Protocol error: invalid multibulk length"))
        #expect(machine.state == .closed)
    }

    @Test func aHeldCommandStillRunsBeforeAProtocolErrorCloses() {
        var machine = ConnectionStateMachine()
        let read = machine.replyPending()
        #expect(machine.admit(command("SET", "k", "v"), kind: .write, writeBacklogged: false) == .hold)
        machine.protocolErrorSeen("ERR Protocol error")
        _ = machine.arrived(read, ByteBuffer(string: "r"))
        guard case .held = machine.next() else { Issue.record("the write sent before the error runs"); return }
        guard case .wait = machine.next() else { Issue.record("then nothing is parsed"); return }
        #expect(machine.settle() == .closeWithError("ERR Protocol error"))
    }

    @Test func quiescingClosesAnIdleConnectionAtOnce() {
        var machine = ConnectionStateMachine()
        machine.quiesce()
        #expect(machine.settle() == .close)
    }

    @Test func quiescingWaitsForRunningCommands() {
        var machine = ConnectionStateMachine()
        let ticket = machine.replyPending()
        machine.quiesce()
        #expect(machine.settle() == .none)
        let drained = machine.arrived(ticket, ByteBuffer(string: "done"))
        #expect(text(drained.replies) == ["done"])
        #expect(drained.resume)
        #expect(machine.settle() == .close)
    }

    @Test func aPeerStopsAtTheOutstandingLimitAndResumesAtHalf() {
        var machine = ConnectionStateMachine(maxOutstanding: 8)
        machine.isPeer = true
        var tickets: [Int] = []
        for _ in 0..<8 { tickets.append(machine.replyPending()) }
        #expect(machine.state == .tooManyOutstanding)
        guard case .wait = machine.next() else { Issue.record("no more commands at the limit"); return }
        // Four answer: eight still count (they wait behind the first), so still stopped.
        for ticket in tickets[1...4] { #expect(!machine.arrived(ticket, ByteBuffer(string: "x")).resume) }
        // The first answers: five go out, three remain (below half of eight): resume.
        let drained = machine.arrived(tickets[0], ByteBuffer(string: "x"))
        #expect(drained.replies.count == 5)
        #expect(drained.resume)
        #expect(machine.state == .running)
    }

    @Test func readingIsWithheldWhileStoppedWithAFullReadAhead() {
        var machine = ConnectionStateMachine(readAheadLimit: 100)
        #expect(machine.shouldRead(writable: true, buffered: 500) == true)  // running: the parser drains it
        machine.awaitReply()
        #expect(machine.shouldRead(writable: true, buffered: 50) == true)
        #expect(machine.shouldRead(writable: true, buffered: 100) == false)
        #expect(machine.shouldResumeReading(writable: true) == false)  // still stopped
        #expect(machine.answered() == true)
        #expect(machine.shouldResumeReading(writable: true) == true)
        #expect(machine.shouldResumeReading(writable: true) == false)  // once
    }

    @Test func readingIsWithheldWhileTheClientDoesNotReadItsReplies() {
        var machine = ConnectionStateMachine()
        #expect(machine.shouldRead(writable: false, buffered: 0) == false)
        #expect(machine.shouldResumeReading(writable: false) == false)
        #expect(machine.shouldResumeReading(writable: true) == true)
    }

    @Test func nothingIsReadAfterAProtocolError() {
        var machine = ConnectionStateMachine()
        machine.protocolErrorSeen("ERR Protocol error")
        #expect(machine.shouldRead(writable: true, buffered: 0) == false)
        #expect(machine.shouldResumeReading(writable: true) == false)
    }
}
