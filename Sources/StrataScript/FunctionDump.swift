/// FUNCTION DUMP / RESTORE payloads in Redis 7's format, so a dump moves between Strata and
/// Redis: per library the RDB_OPCODE_FUNCTION2 opcode (245) and its code as an RDB string, then
/// the RDB version (10, two bytes little-endian) and the CRC-64 (Jones) of all that before it.
public enum FunctionDump {
    static let opcode: UInt8 = 245
    static let rdbVersion: UInt16 = 10

    /// The payload holding `codes` (each a library's code); strings are stored uncompressed.
    public static func encode(_ codes: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        for code in codes {
            out.append(opcode)
            appendLength(code.count, to: &out)
            out += code
        }
        out += [UInt8(rdbVersion & 0xff), UInt8(rdbVersion >> 8)]
        let crc = crc64(out)
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: crc >> (8 * UInt64(i)))) }
        return out
    }

    /// The libraries' codes in `payload`; Redis' error texts.
    public static func decode(_ payload: [UInt8]) throws(ScriptError) -> [[UInt8]] {
        guard payload.count >= 10 else { throw ScriptError("ERR DUMP payload version or checksum are wrong") }
        let footer = payload.count - 10
        let version = UInt16(payload[footer]) | UInt16(payload[footer + 1]) << 8
        var stored: UInt64 = 0
        for i in 0..<8 { stored |= UInt64(payload[footer + 2 + i]) << (8 * UInt64(i)) }
        guard version <= rdbVersion, crc64(payload[..<(footer + 2)]) == stored else {
            throw ScriptError("ERR DUMP payload version or checksum are wrong")
        }
        var codes: [[UInt8]] = []
        var position = 0
        while position < footer {
            let type = payload[position]
            position += 1
            if type == 246 { throw ScriptError("ERR Pre-GA function format not supported") }
            guard type == opcode else { throw ScriptError("ERR given type is not a function") }
            guard let code = readString(payload, &position, end: footer) else {
                throw ScriptError("ERR failed loading the given functions payload")
            }
            codes.append(code)
        }
        return codes
    }

    /// RDB's length encoding: 6 bits, 14 bits, 32 or 64 bits big-endian.
    static func appendLength(_ length: Int, to out: inout [UInt8]) {
        if length < 1 << 6 {
            out.append(UInt8(length))
        } else if length < 1 << 14 {
            out += [UInt8(0x40 | (length >> 8)), UInt8(length & 0xff)]
        } else if length <= Int(UInt32.max) {
            out.append(0x80)
            for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8((length >> shift) & 0xff)) }
        } else {
            out.append(0x81)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((length >> shift) & 0xff)) }
        }
    }

    /// A length, or (special) an encoding number with `encoded` set.
    static func readLength(_ bytes: [UInt8], _ position: inout Int, end: Int) -> (value: Int, encoded: Bool)? {
        guard position < end else { return nil }
        let first = bytes[position]
        position += 1
        switch first >> 6 {
        case 0: return (Int(first & 0x3f), false)
        case 1:
            guard position < end else { return nil }
            defer { position += 1 }
            return (Int(first & 0x3f) << 8 | Int(bytes[position]), false)
        case 3: return (Int(first & 0x3f), true)
        default:
            let width = first == 0x80 ? 4 : first == 0x81 ? 8 : 0
            guard width > 0, position + width <= end else { return nil }
            var value = 0
            for _ in 0..<width {
                value = value << 8 | Int(bytes[position])
                position += 1
            }
            return (value, false)
        }
    }

    /// An RDB string: plain, an encoded integer, or LZF-compressed.
    static func readString(_ bytes: [UInt8], _ position: inout Int, end: Int) -> [UInt8]? {
        guard let (value, encoded) = readLength(bytes, &position, end: end) else { return nil }
        if !encoded {
            guard position + value <= end else { return nil }
            defer { position += value }
            return Array(bytes[position..<(position + value)])
        }
        switch value {
        case 0, 1, 2:
            let width = 1 << value
            guard position + width <= end else { return nil }
            var number: Int64 = 0
            for i in 0..<width { number |= Int64(bytes[position + i]) << (8 * Int64(i)) }
            position += width
            let shift = Int64(64 - 8 * width)
            return Array(String((number << shift) >> shift).utf8)
        case 3:
            guard let (compressed, _) = readLength(bytes, &position, end: end),
                let (length, _) = readLength(bytes, &position, end: end), position + compressed <= end
            else { return nil }
            defer { position += compressed }
            return lzfDecompress(bytes[position..<(position + compressed)], length: length)
        default:
            return nil
        }
    }

    /// LZF decompression (liblzf's format, as Redis writes it).
    static func lzfDecompress(_ input: ArraySlice<UInt8>, length: Int) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(length)
        var i = input.startIndex
        while i < input.endIndex {
            let control = Int(input[i])
            i += 1
            if control < 32 {
                let run = control + 1
                guard i + run <= input.endIndex else { return nil }
                out += input[i..<(i + run)]
                i += run
            } else {
                var run = control >> 5
                if run == 7 {
                    guard i < input.endIndex else { return nil }
                    run += Int(input[i])
                    i += 1
                }
                guard i < input.endIndex else { return nil }
                let back = ((control & 0x1f) << 8) + Int(input[i]) + 1
                i += 1
                guard back <= out.count else { return nil }
                for _ in 0..<(run + 2) { out.append(out[out.count - back]) }
            }
        }
        return out.count == length ? out : nil
    }

    private static let table: [UInt64] = (0..<256).map { n in
        var crc = UInt64(n)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x95AC_9329_AC4B_C9B5 : crc >> 1 }
        return crc
    }

    /// CRC-64/Jones (reflected), as Redis' crc64.
    static func crc64<C: Collection<UInt8>>(_ bytes: C) -> UInt64 {
        var crc: UInt64 = 0
        for byte in bytes { crc = table[Int((crc ^ UInt64(byte)) & 0xff)] ^ (crc >> 8) }
        return crc
    }
}
