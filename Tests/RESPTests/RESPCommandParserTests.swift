import NIOCore
import NIOTestUtils
import Testing

@testable import RESP

@Suite struct RESPCommandParserTests {
    func parseAll(_ text: String, limits: RESPDecoderLimits = RESPDecoderLimits()) throws -> [[String]] {
        var parser = RESPCommandParser(limits: limits)
        var buffer = ByteBuffer(string: text)
        var commands: [[String]] = []
        while let command = try parser.next(&buffer) {
            commands.append(command.arguments.map { String(buffer: $0) })
        }
        return commands
    }

    @Test func decodesArraysOfBulkStrings() throws {
        #expect(try parseAll("*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n") == [["GET", "key"]])
        #expect(try parseAll("*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n") == [["PING"], ["SET", "k", ""]])
        // Empty arrays are skipped.
        #expect(try parseAll("*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n") == [["PING"]])
    }

    @Test func binarySafeArguments() throws {
        var parser = RESPCommandParser()
        var buffer = ByteBuffer()
        buffer.writeString("*2\r\n$3\r\nGET\r\n$4\r\n")
        buffer.writeBytes([0, 13, 10, 255])
        buffer.writeString("\r\n")
        let command = try #require(try parser.next(&buffer))
        #expect(Array(command.arguments[1].readableBytesView) == [0, 13, 10, 255])
    }

    @Test func inlineCommandsWithQuotes() throws {
        #expect(try parseAll("PING\r\n") == [["PING"]])
        #expect(try parseAll("set  key   value\n") == [["set", "key", "value"]])
        #expect(try parseAll("SET k \"hello world\\n\\x41\"\r\n") == [["SET", "k", "hello world\nA"]])
        #expect(try parseAll("SET k 'it\\'s'\r\n") == [["SET", "k", "it's"]])
        #expect(try parseAll("\r\n\r\nPING\r\n") == [["PING"]])
        #expect(throws: RESPProtocolError.unbalancedQuotes) { try parseAll("SET k \"unterminated\r\n") }
        #expect(throws: RESPProtocolError.unbalancedQuotes) { try parseAll("SET k \"a\"b\r\n") }
    }

    @Test func incompleteInputWaitsForMore() throws {
        var parser = RESPCommandParser()
        var buffer = ByteBuffer(string: "*2\r\n$3\r\nGET\r\n$5\r\nhel")
        #expect(try parser.next(&buffer) == nil)
        buffer.writeString("lo\r\n")
        let command = try #require(try parser.next(&buffer))
        #expect(command.arguments.map { String(buffer: $0) } == ["GET", "hello"])
        #expect(buffer.readableBytes == 0)
    }

    @Test(arguments: [
        ("*2\r\n$9999999999\r\n", "invalid bulk length"),
        ("*1\r\n$-5\r\n", "invalid bulk length"),
        ("*1\r\n$abc\r\n", "invalid bulk length"),
        ("*99999999999999999999999\r\n", "invalid multibulk length"),
        ("*2000000\r\n", "invalid multibulk length"),
        ("*x\r\n", "invalid multibulk length"),
        ("*1\r\n+OK\r\n", "expected '$', got '+'"),
        ("*1\r\n$2\r\nabcd\r\n", "bulk string not terminated by CRLF"),
    ])
    func malformedInputThrowsAClearError(input: String, message: String) {
        #expect(throws: RESPProtocolError.self) { try parseAll(input) }
        do {
            _ = try parseAll(input)
        } catch {
            #expect((error as? RESPProtocolError)?.message == "ERR Protocol error: \(message)")
        }
    }

    @Test func limitsAreEnforcedBeforeAnythingIsBuffered() {
        let limits = RESPDecoderLimits(maxBulkLength: 100, maxArguments: 10, maxInlineLength: 50)
        #expect(throws: RESPProtocolError.invalidBulkLength) { try parseAll("*1\r\n$101\r\n", limits: limits) }
        #expect(throws: RESPProtocolError.invalidMultibulkLength) { try parseAll("*11\r\n", limits: limits) }
        #expect(throws: RESPProtocolError.tooBigInlineRequest) {
            try parseAll(String(repeating: "a", count: 60), limits: limits)
        }
        // An unterminated length line longer than any valid length is an error, not a wait.
        #expect(throws: RESPProtocolError.invalidBulkLength) { try parseAll("*1\r\n$" + String(repeating: "1", count: 30), limits: limits) }
    }

    @Test func randomBytesNeverCrash() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            var parser = RESPCommandParser(limits: RESPDecoderLimits(maxBulkLength: 1000, maxArguments: 100, maxInlineLength: 200))
            var buffer = ByteBuffer(bytes: (0..<Int.random(in: 0..<300, using: &rng)).map { _ in
                // Bias towards protocol characters so the parser goes deep.
                let alphabet: [UInt8] = Array("*$\r\n0123456789-+ \"'\\x".utf8)
                return Bool.random(using: &rng) ? alphabet.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
            })
            while true {
                guard let command = try? parser.next(&buffer) else { break }
                #expect(command.arguments.count <= 100 || command.arguments.isEmpty == false)
            }
        }
    }

    /// NIO's verifier feeds the decoder every split of the input: byte by byte, all at once, ...
    @Test func decoderHandlesEverySplit() throws {
        let inputs: [(String, [RESPCommand])] = [
            ("*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n", [RESPCommand("GET", "key")]),
            ("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n*1\r\n$4\r\nPING\r\n", [RESPCommand("SET", "k", "value"), RESPCommand("PING")]),
            ("PING\r\nECHO hi\r\n", [RESPCommand("PING"), RESPCommand("ECHO", "hi")]),
        ]
        for (input, expected) in inputs {
            try ByteToMessageDecoderVerifier.verifyDecoder(
                inputOutputPairs: [(ByteBuffer(string: input), expected)],
                decoderFactory: { RESPCommandDecoder() })
        }
    }
}

@Suite struct RESPReplyTests {
    @Test func encodesEveryReplyType() {
        var b = ByteBuffer()
        b.writeRESPSimpleString("OK")
        b.writeRESPError("ERR bad\r\nthing")
        b.writeRESPInteger(-42)
        b.writeRESPInteger(1234567890123)
        b.writeRESPBulk("hi")
        b.writeRESPBulk([UInt8]())
        b.writeRESPNull(.v2)
        b.writeRESPNull(.v3)
        b.writeRESPArrayHeader(2)
        b.writeRESPMapHeader(1, .v2)
        b.writeRESPMapHeader(1, .v3)
        b.writeRESPInteger(Int.min)
        #expect(
            String(buffer: b)
                == "+OK\r\n-ERR bad  thing\r\n:-42\r\n:1234567890123\r\n$2\r\nhi\r\n$0\r\n\r\n$-1\r\n_\r\n*2\r\n*2\r\n%1\r\n:-9223372036854775808\r\n"
        )
    }
}
