import NIOCore
import NIOEmbedded
import RESP
import Testing

@testable import StrataServer

/// The connection handler on a testing channel, over a real store: what a client sees.
@Suite struct ClientHandlerTests {
    @Test func pipelinedCommandsAnswerInOrder() async throws {
        let node = try TestNode()
        let channel = try await node.connect()
        try await channel.writeInbound(
            pipeline(request("SET", "a", "1"), request("GET", "a"), request("INCR", "a"), request("GET", "missing"), request("PING")))
        let got = try await replies(5, from: channel).map(\.described)
        #expect(got == ["+OK", "$1", ":2", "nil", "+PONG"])
        _ = try await channel.finish(acceptAlreadyClosed: true)
        await node.close()
    }

    @Test func aCommandSplitAcrossReadsRunsOnceWhole() async throws {
        let node = try TestNode()
        let channel = try await node.connect()
        let whole = request("SET", "key", "value")
        for i in 0..<whole.readableBytes {
            try await channel.writeInbound(whole.getSlice(at: i, length: 1)!)
        }
        try await channel.writeInbound(request("GET", "key"))
        #expect(try await replies(2, from: channel).map(\.described) == ["+OK", "$value"])
        _ = try await channel.finish(acceptAlreadyClosed: true)
        await node.close()
    }

    @Test func inlineCommandsWorkAsInRedis() async throws {
        let node = try TestNode()
        let channel = try await node.connect()
        try await channel.writeInbound(ByteBuffer(string: "SET k \"two words\"\r\n\r\nGET k\r\n"))
        #expect(try await replies(2, from: channel).map(\.described) == ["+OK", "$two words"])
        _ = try await channel.finish(acceptAlreadyClosed: true)
        await node.close()
    }

    @Test func aProtocolErrorMidPipelineAnswersWhatCameBeforeThenCloses() async throws {
        let node = try TestNode()
        let channel = try await node.connect()
        var bytes = pipeline(request("SET", "a", "1"), request("GET", "a"))
        bytes.writeString("*2\r\n$3\r\nGET\r\n+oops\r\n")
        bytes.writeString("*1\r\n$4\r\nPING\r\n")  // after the error: never runs
        try await channel.writeInbound(bytes)
        let got = try await replies(3, from: channel).map(\.described)
        #expect(got[0] == "+OK" && got[1] == "$1")
        #expect(got[2].hasPrefix("-ERR Protocol error"))
        #expect(try await eventually { !channel.isActive })
        #expect(try await channel.readOutbound(as: ByteBuffer.self) == nil)
        await node.close()
    }

    @Test func anOversizedRequestIsAProtocolError() async throws {
        let node = try TestNode()
        let channel = try await node.connect()
        // A bulk length past the node's largest value is refused before its bytes arrive.
        try await channel.writeInbound(ByteBuffer(string: "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$\(600 << 20)\r\n"))
        let got = try await replies(1, from: channel).map(\.described)
        #expect(got[0].hasPrefix("-ERR Protocol error"))
        #expect(try await eventually { !channel.isActive })
        await node.close()
    }

    @Test func quiescingClosesTheConnectionOnceIdle() async throws {
        let node = try TestNode()
        let channel = try await node.connect()
        try await channel.writeInbound(request("PING"))
        #expect(try await replies(1, from: channel).map(\.described) == ["+PONG"])
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(try await eventually { !channel.isActive })
        await node.close()
    }

    @Test func quitAnswersThenCloses() async throws {
        let node = try TestNode()
        let channel = try await node.connect()
        try await channel.writeInbound(pipeline(request("PING"), request("QUIT"), request("PING")))
        #expect(try await replies(2, from: channel).map(\.described) == ["+PONG", "+OK"])
        #expect(try await eventually { !channel.isActive })
        #expect(try await channel.readOutbound(as: ByteBuffer.self) == nil)
        await node.close()
    }

    @Test func writesUnderFsyncAlwaysAnswerAfterTheSyncAndInOrder() async throws {
        let node = try TestNode(fsync: .always)
        let channel = try await node.connect()
        // Each SET's reply waits for its sync on the writer thread; the GETs behind them wait
        // their turn and see the writes.
        try await channel.writeInbound(
            pipeline(request("SET", "k", "1"), request("GET", "k"), request("SET", "k", "2"), request("GET", "k"), request("DEL", "k")))
        let got = try await replies(5, from: channel).map(\.described)
        #expect(got == ["+OK", "$1", "+OK", "$2", ":1"])
        _ = try await channel.finish(acceptAlreadyClosed: true)
        await node.close()
    }

    @Test func unauthenticatedClientsGetNoauthUntilAuth() async throws {
        let node = try TestNode(requirePass: "sesame")
        let channel = try await node.connect()
        try await channel.writeInbound(
            pipeline(request("GET", "k"), request("AUTH", "wrong"), request("AUTH", "sesame"), request("GET", "k")))
        let got = try await replies(4, from: channel).map(\.described)
        #expect(got[0] == "-NOAUTH Authentication required.")
        #expect(got[1].hasPrefix("-WRONGPASS"))
        #expect(got[2] == "+OK")
        #expect(got[3] == "nil")
        _ = try await channel.finish(acceptAlreadyClosed: true)
        await node.close()
    }

    @Test func helloThreeSwitchesTheConnectionToResp3() async throws {
        let node = try TestNode()
        let channel = try await node.connect()
        try await channel.writeInbound(pipeline(request("HELLO", "3"), request("GET", "missing")))
        let got = try await replies(2, from: channel)
        #expect(got[0].kind == .map)
        #expect(String(buffer: got[1].raw) == "_\r\n")  // RESP3's null
        _ = try await channel.finish(acceptAlreadyClosed: true)
        await node.close()
    }

    @Test func repliesAreNotWrittenWhileTheClientIsNotReading() async throws {
        let node = try TestNode()
        let channel = try await node.connect()
        // The channel reports it cannot take more output: nothing runs, so nothing piles up.
        try await channel.testingEventLoop.executeInContext { channel.isWritable = false }
        try await channel.writeInbound(request("PING"))
        #expect(try await channel.readOutbound(as: ByteBuffer.self) == nil)
        try await channel.testingEventLoop.executeInContext {
            channel.isWritable = true
            channel.pipeline.fireChannelWritabilityChanged()
        }
        #expect(try await replies(1, from: channel).map(\.described) == ["+PONG"])
        _ = try await channel.finish(acceptAlreadyClosed: true)
        await node.close()
    }

    @Test func clientListShowsTheConnectionAndItsLastCommand() async throws {
        let node = try TestNode()
        let channel = try await node.connect()
        try await channel.writeInbound(pipeline(request("CLIENT", "SETNAME", "worker-1"), request("CLIENT", "LIST")))
        let got = try await replies(2, from: channel)
        #expect(got[0].described == "+OK")
        let line = got[1].string ?? ""
        #expect(line.contains("name=worker-1"))
        #expect(line.contains("cmd=client|list"))
        _ = try await channel.finish(acceptAlreadyClosed: true)
        await node.close()
    }

    @Test func aPeersPipelineStopsAtTheOutstandingLimitAndAnswersEverythingInOrder() async throws {
        let node = try TestNode(fsync: .always, clustered: true)
        let channel = try await node.connect(maxOutstanding: 4)
        try await channel.writeInbound(request("STRATA.PEER", "n2"))
        #expect(try await replies(1, from: channel).map(\.described) == ["+OK"])
        // Every SET waits for its sync, so a peer's pipeline has many running at once: at most
        // four, then the rest wait until half have answered. All answer, in order.
        var writes: [ByteBuffer] = []
        for i in 0..<12 { writes.append(request("SET", "k\(i)", "v\(i)")) }
        writes.append(request("MGET", "k0", "k11"))
        var all = ByteBuffer()
        for var w in writes { all.writeBuffer(&w) }
        try await channel.writeInbound(all)
        let got = try await replies(13, from: channel).map(\.described)
        #expect(got == Array(repeating: "+OK", count: 12) + ["*[$v0,$v11]"])
        _ = try await channel.finish(acceptAlreadyClosed: true)
        await node.close()
    }
}
