// Streaming reply parser for RESP2 and the memcached text protocol. It works on the raw bytes of
// each read, keeps no per-reply objects, and skips value payloads without copying them (a value
// split over several reads is skipped as it arrives; only an incomplete header line is kept).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum Reply {
    case ok            // +OK / STORED / :n
    case hit(Int)      // a value of this many bytes
    case miss          // $-1 / _ / END without VALUE
    case error         // -ERR / SERVER_ERROR / CLIENT_ERROR / ERROR / NOT_STORED

    var isError: Bool {
        if case .error = self { return true }
        return false
    }
}

struct ProtocolViolation: Error, CustomStringConvertible {
    let line: String
    var description: String { "unexpected reply line: \(line)" }
}

struct ReplyParser {
    let proto: WireProtocol
    /// Payload (plus its CRLF) still to skip.
    private var skip = 0
    /// Length of the value being skipped.
    private var valueLength = 0
    /// memcached: a VALUE block was read, its END line is next.
    private var awaitingEnd = false
    /// The first error line seen (for the report).
    var firstErrorLine: String?
    /// Elements still to come of a flat array reply (EXEC's): counted as one reply when done.
    private var elementsLeft = 0

    init(proto: WireProtocol) { self.proto = proto }

    /// Parses complete replies from `bytes`, calling `onReply` for each. Returns the number of bytes
    /// consumed; the rest (an incomplete line) must be passed again with more bytes appended.
    @inline(__always)
    mutating func parse(_ bytes: UnsafeRawBufferPointer, _ onReply: (Reply) -> Void) throws -> Int {
        guard let base = bytes.baseAddress else { return 0 }
        let end = bytes.count
        var i = 0
        while i < end {
            if skip > 0 {
                let n = min(skip, end - i)
                i += n
                skip -= n
                if skip > 0 { break }
                if proto == .resp {
                    emit(.hit(valueLength), onReply)
                } else {
                    awaitingEnd = true
                }
                continue
            }
            guard let nl = memchr(base + i, 0x0A, end - i) else { break }
            let nlIndex = base.distance(to: UnsafeRawPointer(nl))
            let lineStart = i
            var lineEnd = nlIndex  // exclusive, without CR
            if lineEnd > lineStart && bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            i = nlIndex + 1
            if proto == .resp {
                try respLine(bytes, lineStart, lineEnd, onReply)
            } else {
                try memcachedLine(bytes, lineStart, lineEnd, onReply)
            }
        }
        return i
    }

    @inline(__always)
    private mutating func respLine(_ b: UnsafeRawBufferPointer, _ s: Int, _ e: Int, _ onReply: (Reply) -> Void) throws {
        guard e > s else { throw ProtocolViolation(line: "") }
        switch b[s] {
        case UInt8(ascii: "$"):
            if e - s == 3 && b[s + 1] == UInt8(ascii: "-") && b[s + 2] == UInt8(ascii: "1") {
                emit(.miss, onReply)
                return
            }
            guard let n = Self.parseInt(b, s + 1, e) else { throw violation(b, s, e) }
            valueLength = n
            skip = n + 2
        case UInt8(ascii: "+"), UInt8(ascii: ":"):
            emit(.ok, onReply)
        case UInt8(ascii: "-"):
            if firstErrorLine == nil { firstErrorLine = Self.string(b, s, e) }
            emit(.error, onReply)
        case UInt8(ascii: "_"):
            emit(.miss, onReply)
        case UInt8(ascii: "*") where elementsLeft == 0:
            // A flat array (EXEC's reply): a null one is a miss (an aborted transaction).
            if e - s >= 2 && b[s + 1] == UInt8(ascii: "-") {
                onReply(.miss)
                return
            }
            guard let n = Self.parseInt(b, s + 1, e) else { throw violation(b, s, e) }
            if n == 0 {
                onReply(.ok)
            } else {
                elementsLeft = n
            }
        default:
            throw violation(b, s, e)
        }
    }

    /// Hands a reply on, or counts it as an element of the array being read.
    @inline(__always)
    private mutating func emit(_ reply: Reply, _ onReply: (Reply) -> Void) {
        guard elementsLeft > 0 else { return onReply(reply) }
        elementsLeft -= 1
        if elementsLeft == 0 { onReply(.ok) }
    }

    @inline(__always)
    private mutating func memcachedLine(_ b: UnsafeRawBufferPointer, _ s: Int, _ e: Int, _ onReply: (Reply) -> Void) throws {
        let len = e - s
        if awaitingEnd {
            guard len == 3 && b[s] == UInt8(ascii: "E") && b[s + 1] == UInt8(ascii: "N") && b[s + 2] == UInt8(ascii: "D") else {
                throw violation(b, s, e)
            }
            awaitingEnd = false
            onReply(.hit(valueLength))
            return
        }
        if len >= 6 && b[s] == UInt8(ascii: "V") && b[s + 1] == UInt8(ascii: "A") && b[s + 5] == UInt8(ascii: " ") {
            // VALUE <key> <flags> <bytes> [<cas>]: the byte count is the fourth token
            var tokenStart = s
            var token = 0
            var j = s
            var lengthToken: (Int, Int)?
            while j <= e {
                if j == e || b[j] == UInt8(ascii: " ") {
                    if j > tokenStart {
                        if token == 3 { lengthToken = (tokenStart, j) }
                        token += 1
                    }
                    tokenStart = j + 1
                }
                j += 1
            }
            guard let (ls, le) = lengthToken, let n = Self.parseInt(b, ls, le) else { throw violation(b, s, e) }
            valueLength = n
            skip = n + 2
            return
        }
        if len == 3 && b[s] == UInt8(ascii: "E") && b[s + 1] == UInt8(ascii: "N") && b[s + 2] == UInt8(ascii: "D") {
            onReply(.miss)
            return
        }
        if len == 6 && b[s] == UInt8(ascii: "S") && b[s + 1] == UInt8(ascii: "T") && b[s + 2] == UInt8(ascii: "O") {
            onReply(.ok)  // STORED
            return
        }
        // ERROR, CLIENT_ERROR ..., SERVER_ERROR ..., NOT_STORED, EXISTS, NOT_FOUND
        if firstErrorLine == nil { firstErrorLine = Self.string(b, s, e) }
        onReply(.error)
    }

    private func violation(_ b: UnsafeRawBufferPointer, _ s: Int, _ e: Int) -> ProtocolViolation {
        ProtocolViolation(line: Self.string(b, s, min(e, s + 200)))
    }

    @inline(__always)
    static func parseInt(_ b: UnsafeRawBufferPointer, _ s: Int, _ e: Int) -> Int? {
        guard e > s, e - s <= 18 else { return nil }
        var n = 0
        for j in s..<e {
            let d = Int(b[j]) &- 48
            guard d >= 0 && d <= 9 else { return nil }
            n = n &* 10 &+ d
        }
        return n
    }

    static func string(_ b: UnsafeRawBufferPointer, _ s: Int, _ e: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: b[s..<e]), as: UTF8.self)
    }
}
