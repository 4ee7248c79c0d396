import NIOCore
import Testing

@testable import RESP

@Suite struct RESPReplyParserTests {
    func all(_ text: String) throws -> [RESPReply] {
        let parser = RESPReplyParser()
        var buffer = ByteBuffer(string: text)
        var replies: [RESPReply] = []
        while let reply = try parser.next(&buffer) { replies.append(reply) }
        #expect(buffer.readableBytes == 0)
        return replies
    }

    @Test func parsesEveryKindAndKeepsTheRawBytes() throws {
        let text = "+OK\r\n-ERR no\r\n:42\r\n$5\r\nhello\r\n$-1\r\n_\r\n*2\r\n$1\r\na\r\n:1\r\n%1\r\n+k\r\n+v\r\n*-1\r\n"
        let replies = try all(text)
        #expect(replies.map(\.kind) == [.simpleString, .error, .integer, .bulkString, .null, .null, .array, .map, .null])
        #expect(replies[0].string == "OK")
        #expect(replies[1].string == "ERR no")
        #expect(replies[2].integer == 42)
        #expect(replies[3].string == "hello")
        #expect(replies[6].elements.map(\.kind) == [.bulkString, .integer])
        #expect(replies[7].elements.count == 2)
        #expect(replies.map { String(buffer: $0.raw) }.joined() == text)
    }

    @Test func incompleteRepliesConsumeNothing() throws {
        let parser = RESPReplyParser()
        for text in ["+OK", "$5\r\nhel", "*2\r\n:1\r\n", "%1\r\n+k\r\n"] {
            var buffer = ByteBuffer(string: text)
            #expect(try parser.next(&buffer) == nil)
            #expect(buffer.readableBytes == text.utf8.count)
        }
    }

    @Test func malformedRepliesThrow() {
        for text in ["?x\r\n", "$abc\r\n", "$3\r\nabcd\r\n", "*x\r\n", String(repeating: "*1\r\n", count: 40) + ":1\r\n"] {
            #expect(throws: RESPProtocolError.self) { _ = try all(text) }
        }
    }
}
