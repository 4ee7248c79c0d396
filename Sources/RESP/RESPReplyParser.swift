import NIOCore

/// One reply value as it arrived, for a client of another node: its kind, a few decoded fields,
/// and the exact bytes (so a node can relay a peer's reply to its own client unchanged).
public struct RESPReply: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case simpleString, error, integer, bulkString, null, array, map, set, double, boolean, bigNumber, verbatim, push, attribute
    }

    public var kind: Kind
    /// The whole value, header to last CRLF.
    public var raw: ByteBuffer
    /// Simple string, error or bulk string payload; the digits of an integer.
    public var payload: ByteBuffer?
    /// Element count of an aggregate.
    public var count: Int
    /// The elements of an aggregate (map: keys and values alternating).
    public var elements: [RESPReply]

    /// The text of a simple string or error, or a bulk string as UTF-8.
    public var string: String? { payload.map { String(buffer: $0) } }
    /// The value of an integer reply.
    public var integer: Int? { kind == .integer ? string.flatMap { Int($0) } : nil }
}

/// Parses replies (RESP2 and RESP3) from a byte stream: nil when more bytes are needed, a thrown
/// `RESPProtocolError` on malformed input. Aggregates are bounded by `maxDepth` and every length
/// by `limits`.
public struct RESPReplyParser: Sendable {
    public let limits: RESPDecoderLimits
    public let maxDepth: Int

    public init(limits: RESPDecoderLimits = RESPDecoderLimits(), maxDepth: Int = 32) {
        self.limits = limits
        self.maxDepth = maxDepth
    }

    /// The next complete reply, consuming its bytes; nil (consuming nothing) if incomplete.
    public func next(_ buffer: inout ByteBuffer) throws(RESPProtocolError) -> RESPReply? {
        var cursor = buffer.readerIndex
        guard let reply = try parse(buffer, &cursor, depth: 0) else { return nil }
        buffer.moveReaderIndex(to: cursor)
        return reply
    }

    private func line(_ buffer: ByteBuffer, _ cursor: Int) throws(RESPProtocolError) -> (ByteBuffer, Int)? {
        let view = buffer.readableBytesView
        let start = cursor - buffer.readerIndex + view.startIndex
        let limit = min(view.endIndex, start + limits.maxInlineLength + 2)
        guard let cr = view[start..<limit].firstIndex(of: UInt8(ascii: "\r")) else {
            if limit - start > limits.maxInlineLength { throw RESPProtocolError("reply line too long") }
            return nil
        }
        guard cr + 1 < view.endIndex else { return nil }
        guard view[cr + 1] == UInt8(ascii: "\n") else { throw RESPProtocolError("reply line not terminated by CRLF") }
        let length = cr - start
        return (buffer.getSlice(at: cursor, length: length)!, cursor + length + 2)
    }

    private func parse(_ buffer: ByteBuffer, _ cursor: inout Int, depth: Int) throws(RESPProtocolError) -> RESPReply? {
        guard depth <= maxDepth else { throw RESPProtocolError("reply nested too deeply") }
        let start = cursor
        guard let type = buffer.getInteger(at: cursor, as: UInt8.self) else { return nil }
        guard let (text, afterLine) = try line(buffer, cursor + 1) else { return nil }
        func number() throws(RESPProtocolError) -> Int {
            guard let n = Int(String(buffer: text)) else { throw RESPProtocolError("invalid length in reply") }
            return n
        }
        func finish(_ kind: RESPReply.Kind, payload: ByteBuffer?, end: Int, count: Int = 0, elements: [RESPReply] = []) -> RESPReply {
            cursor = end
            return RESPReply(kind: kind, raw: buffer.getSlice(at: start, length: end - start)!, payload: payload, count: count, elements: elements)
        }
        switch type {
        case UInt8(ascii: "+"): return finish(.simpleString, payload: text, end: afterLine)
        case UInt8(ascii: "-"): return finish(.error, payload: text, end: afterLine)
        case UInt8(ascii: ":"): return finish(.integer, payload: text, end: afterLine)
        case UInt8(ascii: "_"): return finish(.null, payload: nil, end: afterLine)
        case UInt8(ascii: ","): return finish(.double, payload: text, end: afterLine)
        case UInt8(ascii: "#"): return finish(.boolean, payload: text, end: afterLine)
        case UInt8(ascii: "("): return finish(.bigNumber, payload: text, end: afterLine)
        case UInt8(ascii: "$"), UInt8(ascii: "="), UInt8(ascii: "!"):
            let length = try number()
            if length == -1 { return finish(.null, payload: nil, end: afterLine) }
            guard length >= 0, length <= limits.maxBulkLength else { throw RESPProtocolError.invalidBulkLength }
            guard buffer.writerIndex >= afterLine + length + 2 else { return nil }
            guard buffer.getInteger(at: afterLine + length, as: UInt16.self) == 0x0D0A else { throw .missingCRLF }
            let kind: RESPReply.Kind = type == UInt8(ascii: "$") ? .bulkString : type == UInt8(ascii: "=") ? .verbatim : .error
            return finish(kind, payload: buffer.getSlice(at: afterLine, length: length), end: afterLine + length + 2)
        case UInt8(ascii: "*"), UInt8(ascii: "%"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "|"):
            let declared = try number()
            if declared == -1 { return finish(.null, payload: nil, end: afterLine) }
            let isPairs = type == UInt8(ascii: "%") || type == UInt8(ascii: "|")
            guard declared >= 0, declared <= limits.maxArguments else { throw RESPProtocolError.invalidMultibulkLength }
            var elements: [RESPReply] = []
            var position = afterLine
            for _ in 0..<(isPairs ? declared * 2 : declared) {
                guard let element = try parse(buffer, &position, depth: depth + 1) else { return nil }
                elements.append(element)
            }
            if type == UInt8(ascii: "|") {
                // An attribute precedes the value it describes: return that value.
                guard let value = try parse(buffer, &position, depth: depth + 1) else { return nil }
                cursor = position
                return value
            }
            let kind: RESPReply.Kind =
                switch type {
                case UInt8(ascii: "%"): .map
                case UInt8(ascii: "~"): .set
                case UInt8(ascii: ">"): .push
                default: .array
                }
            return finish(kind, payload: nil, end: position, count: declared, elements: elements)
        default:
            throw RESPProtocolError("unknown reply type byte \(type)")
        }
    }
}
