import NIOCore
import NIOEmbedded
import RESP
import Testing

@testable import StrataServer

/// The one command executor, called directly as MULTI or a script will call it.
@Suite struct CommandExecutorTests {
    private func caller(_ node: TestNode, origin: CommandOrigin = .client, authenticated: Bool = true) -> Caller {
        let session = ClientSession(id: 1, address: "test", localAddress: "test", authenticated: authenticated)
        return Caller(
            session: session, eventLoop: EmbeddedEventLoop(), origin: origin, version: .v2, authenticated: authenticated)
    }

    private func args(_ words: String...) -> [ByteBuffer] { words.map { ByteBuffer(string: $0) } }

    /// Runs a command and gives its reply, waiting for a pending one.
    private func run(_ node: TestNode, _ arguments: [ByteBuffer], caller: Caller) throws -> (Reply, Execution) {
        var out = ByteBuffer()
        let execution = node.server.executor.execute(arguments, caller: caller, into: &out)
        switch execution.result {
        case .written(let isError):
            return (Reply(out, isError: isError), execution)
        case .pending(let future):
            (caller.eventLoop as? EmbeddedEventLoop)?.run()
            return (try future.wait(), execution)
        }
    }

    @Test func anUnknownCommandEchoesItsNameAndArgumentsAsRedisDoes() throws {
        let node = try TestNode()
        defer { Task { await node.close() } }
        let (reply, _) = try run(node, args("FOO", "bar", "baz"), caller: caller(node))
        #expect(reply.isError)
        #expect(String(buffer: reply.bytes) == "-ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' \r\n")
    }

    @Test func theWrongNumberOfArgumentsIsAnErrorBeforeAuthentication() throws {
        let node = try TestNode(requirePass: "pw")
        defer { Task { await node.close() } }
        let anonymous = caller(node, authenticated: false)
        let (arity, _) = try run(node, args("GET"), caller: anonymous)
        #expect(arity.isError)
        #expect(String(buffer: arity.bytes) == "-ERR wrong number of arguments for 'get' command\r\n")
        let (noauth, _) = try run(node, args("GET", "k"), caller: anonymous)
        #expect(String(buffer: noauth.bytes) == "-NOAUTH Authentication required.\r\n")
        // Commands allowed before AUTH run (Redis refuses even PING).
        let (ping, _) = try run(node, args("PING"), caller: anonymous)
        #expect(ping.isError)
        let (auth, _) = try run(node, args("AUTH", "pw"), caller: anonymous)
        #expect(String(buffer: auth.bytes) == "+OK\r\n")
    }

    @Test func aThrownErrorIsTheReplyAndNothingElseIsWritten() throws {
        let node = try TestNode()
        defer { Task { await node.close() } }
        let c = caller(node)
        _ = try run(node, args("SET", "n", "not a number"), caller: c)
        let (reply, _) = try run(node, args("INCR", "n"), caller: c)
        #expect(reply.isError)
        #expect(String(buffer: reply.bytes) == "-ERR value is not an integer or out of range\r\n")
    }

    @Test func repliesAreAppendedAfterWhatTheBufferHolds() throws {
        let node = try TestNode()
        defer { Task { await node.close() } }
        var out = ByteBuffer(string: "+EARLIER\r\n")
        let execution = node.server.executor.execute(args("ECHO", "hi"), caller: caller(node), into: &out)
        guard case .written(let isError) = execution.result else { Issue.record("ECHO answers at once"); return }
        #expect(!isError)
        #expect(String(buffer: out) == "+EARLIER\r\n$2\r\nhi\r\n")
    }

    @Test func callsAndErrorsAreCountedForClientsButNotForParts() throws {
        let node = try TestNode()
        defer { Task { await node.close() } }
        let before = node.server.counters.commandsProcessed.load(ordering: .relaxed)
        _ = try run(node, args("GET", "k"), caller: caller(node))
        _ = try run(node, args("GET", "k"), caller: caller(node, origin: .part))
        #expect(node.server.counters.commandsProcessed.load(ordering: .relaxed) == before + 1)
    }

    @Test func partsSkipAuthenticationTheirParentPassed() throws {
        let node = try TestNode(requirePass: "pw")
        defer { Task { await node.close() } }
        let (reply, _) = try run(node, args("GET", "k"), caller: caller(node, origin: .part, authenticated: false))
        #expect(!reply.isError)
    }

    @Test func quitAsksForTheConnectionToClose() throws {
        let node = try TestNode()
        defer { Task { await node.close() } }
        let (reply, execution) = try run(node, args("QUIT"), caller: caller(node))
        #expect(String(buffer: reply.bytes) == "+OK\r\n")
        #expect(execution.closeAfterReply)
    }

    @Test func aWriteUnderFsyncAlwaysIsPendingUntilSynced() throws {
        let node = try TestNode(fsync: .always)
        defer { Task { await node.close() } }
        var out = ByteBuffer()
        let execution = node.server.executor.execute(args("SET", "k", "v"), caller: caller(node), into: &out)
        guard case .pending(let future) = execution.result else { Issue.record("a write waits for its sync"); return }
        #expect(out.readableBytes == 0)
        let reply = try future.wait()
        #expect(String(buffer: reply.bytes) == "+OK\r\n")
    }

    @Test func aFailedWriteUnderFsyncAlwaysAnswersAtOnce() throws {
        let node = try TestNode(fsync: .always)
        defer { Task { await node.close() } }
        _ = try run(node, args("SET", "s", "text"), caller: caller(node))
        var out = ByteBuffer()
        let execution = node.server.executor.execute(args("INCR", "s"), caller: caller(node), into: &out)
        guard case .written(let isError) = execution.result else { Issue.record("an error does not wait"); return }
        #expect(isError)
    }

    @Test func aReplyKnowsItsIntegerForCombiningParts() throws {
        #expect(Reply(ByteBuffer(string: ":42\r\n")).integer == 42)
        #expect(Reply(ByteBuffer(string: ":-3\r\n")).integer == -3)
        #expect(Reply(ByteBuffer(string: "+OK\r\n")).integer == nil)
        #expect(Reply.error("ERR x").integer == nil)
        var relayed = ByteBuffer(string: "-ERR from a peer\r\n:1\r\n")
        #expect(Reply(relayed: try #require(try RESPReplyParser().next(&relayed))).isError)
        #expect(!Reply(relayed: try #require(try RESPReplyParser().next(&relayed))).isError)
    }
}
