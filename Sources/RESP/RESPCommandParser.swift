import NIOCore

/// Parses commands from a byte stream: RESP arrays of bulk strings (what client libraries send)
/// and inline commands (what a person types into telnet or `redis-cli` sends for some tools).
///
/// `next(_:)` returns nil when the buffer holds only part of a command (it keeps what it has
/// parsed and resumes when more bytes come), and throws on malformed input. It never allocates
/// what a header claims: an argument's bytes are taken only once they have arrived, and every
/// length is checked against `RESPDecoderLimits` first.
public struct RESPCommandParser: Sendable {
    public let limits: RESPDecoderLimits
    private var arguments: [ByteBuffer] = []
    private var remaining = 0  // arguments still to read of the current array; 0 = between commands

    public init(limits: RESPDecoderLimits = RESPDecoderLimits()) {
        self.limits = limits
    }

    /// The next complete command in `buffer`, consuming its bytes; nil if more bytes are needed.
    public mutating func next(_ buffer: inout ByteBuffer) throws(RESPProtocolError) -> RESPCommand? {
        while true {
            if remaining == 0 {
                guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
                if first != UInt8(ascii: "*") {
                    guard let inline = try parseInline(&buffer) else { return nil }
                    if inline.isEmpty { continue }  // blank line: ignored, as Redis does
                    return RESPCommand(arguments: inline)
                }
                guard let (count, headerLength) = try parseLength(buffer, prefix: "*", error: .invalidMultibulkLength) else {
                    return nil
                }
                guard count <= limits.maxArguments else { throw .invalidMultibulkLength }
                buffer.moveReaderIndex(forwardBy: headerLength)
                if count <= 0 { continue }  // *0 and *-1 are no commands
                remaining = count
                arguments = []
                arguments.reserveCapacity(min(count, 64))
            }
            while remaining > 0 {
                guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
                guard first == UInt8(ascii: "$") else { throw .expectedDollar(got: first) }
                guard let (length, headerLength) = try parseLength(buffer, prefix: "$", error: .invalidBulkLength) else {
                    return nil
                }
                guard length >= 0, length <= limits.maxBulkLength else { throw .invalidBulkLength }
                guard buffer.readableBytes >= headerLength + length + 2 else { return nil }
                let crlfAt = buffer.readerIndex + headerLength + length
                guard buffer.getInteger(at: crlfAt, as: UInt16.self) == 0x0D0A else { throw .missingCRLF }
                buffer.moveReaderIndex(forwardBy: headerLength)
                arguments.append(buffer.readSlice(length: length)!)
                buffer.moveReaderIndex(forwardBy: 2)
                remaining -= 1
            }
            let command = RESPCommand(arguments: arguments)
            arguments = []
            return command
        }
    }

    /// Parses `<prefix><integer>\r\n` at the reader index without consuming it.
    /// Returns the integer and the header's length, or nil if the line is not complete.
    private func parseLength(_ buffer: ByteBuffer, prefix: Character, error: RESPProtocolError) throws(RESPProtocolError)
        -> (Int, Int)?
    {
        let start = buffer.readerIndex + 1
        let maxDigits = 20
        var value = 0
        var negative = false
        var index = start
        let end = buffer.writerIndex
        while index < end {
            let byte = buffer.getInteger(at: index, as: UInt8.self)!
            if byte == UInt8(ascii: "\r") {
                guard index + 1 < end else { return nil }
                guard buffer.getInteger(at: index + 1, as: UInt8.self) == UInt8(ascii: "\n"), index > start,
                    !(negative && index == start + 1)
                else { throw error }
                return (negative ? -value : value, index + 2 - buffer.readerIndex)
            }
            if byte == UInt8(ascii: "-") && index == start {
                negative = true
            } else if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                let (times10, o1) = value.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
                guard !o1, !o2 else { throw error }
                value = sum
            } else {
                throw error
            }
            index += 1
            if index - start > maxDigits { throw error }
        }
        return nil
    }

    /// An inline command: one line, split into arguments the way Redis' `sdssplitargs` does.
    private func parseInline(_ buffer: inout ByteBuffer) throws(RESPProtocolError) -> [ByteBuffer]? {
        let view = buffer.readableBytesView
        let searchEnd = view.startIndex + min(view.count, limits.maxInlineLength + 2)
        guard let newline = view[view.startIndex..<searchEnd].firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > limits.maxInlineLength { throw .tooBigInlineRequest }
            return nil
        }
        var lineEnd = newline
        if lineEnd > view.startIndex && view[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
        let line = Array(view[view.startIndex..<lineEnd])
        buffer.moveReaderIndex(forwardBy: newline - view.startIndex + 1)
        return try InlineSplitter.split(line).map { ByteBuffer(bytes: $0) }
    }
}

/// Redis' `sdssplitargs`: whitespace-separated words; "double quotes" with \n \r \t \b \a \\ \"
/// and \xHH escapes; 'single quotes' with \' only; a closing quote must end the word.
enum InlineSplitter {
    static func split(_ line: [UInt8]) throws(RESPProtocolError) -> [[UInt8]] {
        var words: [[UInt8]] = []
        var i = 0
        let n = line.count
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == 0x0B || b == 0x0C }
        func hex(_ b: UInt8) -> UInt8? {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        while true {
            while i < n && isSpace(line[i]) { i += 1 }
            if i >= n { return words }
            var word: [UInt8] = []
            var inDouble = false
            var inSingle = false
            var done = false
            while !done {
                if inDouble {
                    guard i < n else { throw .unbalancedQuotes }
                    if line[i] == UInt8(ascii: "\\") && i + 3 < n && line[i + 1] == UInt8(ascii: "x"),
                        let h = hex(line[i + 2]), let l = hex(line[i + 3])
                    {
                        word.append(h << 4 | l)
                        i += 3
                    } else if line[i] == UInt8(ascii: "\\") && i + 1 < n {
                        i += 1
                        switch line[i] {
                        case UInt8(ascii: "n"): word.append(0x0A)
                        case UInt8(ascii: "r"): word.append(0x0D)
                        case UInt8(ascii: "t"): word.append(0x09)
                        case UInt8(ascii: "b"): word.append(0x08)
                        case UInt8(ascii: "a"): word.append(0x07)
                        default: word.append(line[i])
                        }
                    } else if line[i] == UInt8(ascii: "\"") {
                        if i + 1 < n && !isSpace(line[i + 1]) { throw .unbalancedQuotes }
                        done = true
                    } else {
                        word.append(line[i])
                    }
                } else if inSingle {
                    guard i < n else { throw .unbalancedQuotes }
                    if line[i] == UInt8(ascii: "\\") && i + 1 < n && line[i + 1] == UInt8(ascii: "'") {
                        i += 1
                        word.append(UInt8(ascii: "'"))
                    } else if line[i] == UInt8(ascii: "'") {
                        if i + 1 < n && !isSpace(line[i + 1]) { throw .unbalancedQuotes }
                        done = true
                    } else {
                        word.append(line[i])
                    }
                } else {
                    if i >= n {
                        done = true
                        break
                    }
                    switch line[i] {
                    case let b where isSpace(b): done = true
                    case UInt8(ascii: "\""): inDouble = true
                    case UInt8(ascii: "'"): inSingle = true
                    default: word.append(line[i])
                    }
                }
                if i < n { i += 1 }
            }
            words.append(word)
        }
    }
}
