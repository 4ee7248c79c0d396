import StrataCollections

/// DUMP's and RESTORE's serialized value, in Redis' format: one RDB object (its type byte and
/// body), the RDB version as two little-endian bytes, and a CRC-64 (Jones, as Redis' crc64) of
/// everything before it, so a payload moves between Redis 7 and Strata either way.
///
/// Strata writes the plain RDB encodings every Redis since 2.x loads (string, list, set, hash,
/// zset with binary scores) and reads those, the integer and LZF string forms, and the compact
/// encodings Redis 7.0-7.2 write (intset, listpack hashes, sets and zsets, quicklist 2).
enum DumpPayload {
    /// The RDB version written: Redis 7.0's, so 7.0 and later load what Strata dumps.
    static let rdbVersion: UInt16 = 10
    /// The newest version read (Redis 7.2's); RESTORE refuses a newer one, as Redis does.
    static let newestReadableVersion: UInt16 = 11

    struct Malformed: Error {}

    // RDB object types (rdb.h).
    private static let typeString: UInt8 = 0, typeList: UInt8 = 1, typeSet: UInt8 = 2, typeZset: UInt8 = 3
    private static let typeHash: UInt8 = 4, typeZset2: UInt8 = 5, typeIntset: UInt8 = 11
    private static let typeHashListpack: UInt8 = 16, typeZsetListpack: UInt8 = 17, typeQuicklist2: UInt8 = 18
    private static let typeSetListpack: UInt8 = 20

    // MARK: Writing

    static func dump(_ value: StoredValue) -> [UInt8] {
        var out: [UInt8] = []
        switch value {
        case .string(let bytes):
            out.append(typeString)
            writeString(bytes, to: &out)
        case .list(let list):
            out.append(typeList)
            let elements = list.elements
            writeLength(elements.count, to: &out)
            for element in elements { writeString(element, to: &out) }
        case .set(let set):
            out.append(typeSet)
            let members = set.members
            writeLength(members.count, to: &out)
            for member in members { writeString(member, to: &out) }
        case .hash(let hash):
            out.append(typeHash)
            let entries = hash.entries
            writeLength(entries.count, to: &out)
            for (field, value) in entries {
                writeString(field, to: &out)
                writeString(value, to: &out)
            }
        case .zset(let zset):
            out.append(typeZset2)
            let entries = zset.entries
            writeLength(entries.count, to: &out)
            // Redis writes a zset from its highest score down, so loading it inserts at the head.
            for entry in entries.reversed() {
                writeString(entry.member, to: &out)
                withUnsafeBytes(of: entry.score.bitPattern.littleEndian) { out.append(contentsOf: $0) }
            }
        }
        withUnsafeBytes(of: rdbVersion.littleEndian) { out.append(contentsOf: $0) }
        let crc = CRC64.checksum(out)
        withUnsafeBytes(of: crc.littleEndian) { out.append(contentsOf: $0) }
        return out
    }

    private static func writeLength(_ n: Int, to out: inout [UInt8]) {
        if n < 1 << 6 {
            out.append(UInt8(n))
        } else if n < 1 << 14 {
            out.append(0x40 | UInt8(n >> 8))
            out.append(UInt8(n & 0xFF))
        } else if n <= Int(UInt32.max) {
            out.append(0x80)
            withUnsafeBytes(of: UInt32(n).bigEndian) { out.append(contentsOf: $0) }
        } else {
            out.append(0x81)
            withUnsafeBytes(of: UInt64(n).bigEndian) { out.append(contentsOf: $0) }
        }
    }

    private static func writeString(_ bytes: [UInt8], to out: inout [UInt8]) {
        writeLength(bytes.count, to: &out)
        out.append(contentsOf: bytes)
    }

    // MARK: Reading

    /// Whether `payload` has a version this node reads and an intact checksum (Redis'
    /// `verifyDumpPayload`).
    static func verify(_ payload: [UInt8]) -> Bool {
        guard payload.count >= 10 else { return false }
        let footer = payload.count - 10
        let version = UInt16(payload[footer]) | UInt16(payload[footer + 1]) << 8
        guard version <= newestReadableVersion else { return false }
        var crc: UInt64 = 0
        for i in 0..<8 { crc |= UInt64(payload[payload.count - 8 + i]) << (8 * UInt64(i)) }
        return CRC64.checksum(payload[..<(payload.count - 8)]) == crc
    }

    /// The value a verified payload holds; throws `Malformed` for anything it cannot read.
    static func load(_ payload: [UInt8], limits: CollectionLimits) throws -> StoredValue {
        var reader = Reader(bytes: payload[..<(payload.count - 10)])
        let type = try reader.byte()
        let value: StoredValue
        switch type {
        case typeString:
            value = .string(try reader.string())
        case typeList:
            var list = ListValue()
            for _ in 0..<(try reader.length()) { list.push(try reader.string(), front: false, limits: limits) }
            value = .list(list)
        case typeSet:
            let count = try reader.length()
            value = .set(SetValue(members: try (0..<count).map { _ in try reader.string() }, limits: limits))
        case typeHash:
            var hash = HashValue()
            for _ in 0..<(try reader.length()) { _ = hash.set(try reader.string(), try reader.string(), limits: limits) }
            value = .hash(hash)
        case typeZset, typeZset2:
            var pairs: [ScoredMember] = []
            for _ in 0..<(try reader.length()) {
                let member = try reader.string()
                let score = type == typeZset2 ? try reader.binaryDouble() : try reader.textDouble()
                pairs.append(ScoredMember(member: member, score: score))
            }
            value = .zset(try sortedSet(pairs, limits: limits))
        case typeIntset:
            value = .set(SetValue(members: try intsetMembers(try reader.string()), limits: limits))
        case typeSetListpack:
            value = .set(SetValue(members: try ListpackReader.entries(try reader.string()), limits: limits))
        case typeHashListpack:
            let flat = try ListpackReader.entries(try reader.string())
            guard flat.count % 2 == 0 else { throw Malformed() }
            var hash = HashValue()
            for i in stride(from: 0, to: flat.count, by: 2) { _ = hash.set(flat[i], flat[i + 1], limits: limits) }
            value = .hash(hash)
        case typeZsetListpack:
            let flat = try ListpackReader.entries(try reader.string())
            guard flat.count % 2 == 0 else { throw Malformed() }
            let pairs = try stride(from: 0, to: flat.count, by: 2).map { i -> ScoredMember in
                guard let score = Double(String(decoding: flat[i + 1], as: UTF8.self)) else { throw Malformed() }
                return ScoredMember(member: flat[i], score: score)
            }
            value = .zset(try sortedSet(pairs, limits: limits))
        case typeQuicklist2:
            var list = ListValue()
            for _ in 0..<(try reader.length()) {
                let container = try reader.length()
                let node = try reader.string()
                switch container {
                case 1: list.push(node, front: false, limits: limits)  // a plain node: one large element
                case 2: for element in try ListpackReader.entries(node) { list.push(element, front: false, limits: limits) }
                default: throw Malformed()
                }
            }
            value = .list(list)
        default:
            throw Malformed()
        }
        guard reader.isAtEnd, !value.isEmptyCollection else { throw Malformed() }
        return value
    }

    private static func sortedSet(_ pairs: [ScoredMember], limits: CollectionLimits) throws -> SortedSetValue {
        let longest = pairs.map(\.member.count).max() ?? 0
        var zset = SortedSetValue(sizeHint: pairs.count, longestMember: longest, limits: limits)
        for pair in pairs {
            guard !pair.score.isNaN else { throw Malformed() }
            guard (try? zset.add(pair.member, score: pair.score, limits: limits)) != nil else { throw Malformed() }
        }
        return zset
    }

    /// An intset blob: its integer width (2, 4 or 8 bytes), its count, then the integers.
    private static func intsetMembers(_ blob: [UInt8]) throws -> [[UInt8]] {
        var reader = Reader(bytes: blob[...])
        let width = Int(try reader.littleEndian(4))
        let count = Int(try reader.littleEndian(4))
        guard [2, 4, 8].contains(width), blob.count == 8 + width * count else { throw Malformed() }
        return try (0..<count).map { _ in
            let raw = try reader.littleEndian(width)
            let shift = UInt64(64 - 8 * width)
            return Array(String(Int64(bitPattern: raw << shift) >> Int64(shift)).utf8)
        }
    }

    /// Reads RDB lengths and strings from a payload.
    struct Reader {
        var bytes: ArraySlice<UInt8>

        var isAtEnd: Bool { bytes.isEmpty }

        mutating func byte() throws -> UInt8 {
            guard let b = bytes.popFirst() else { throw Malformed() }
            return b
        }

        mutating func take(_ n: Int) throws -> [UInt8] {
            guard n >= 0, bytes.count >= n else { throw Malformed() }
            defer { bytes = bytes.dropFirst(n) }
            return Array(bytes.prefix(n))
        }

        mutating func littleEndian(_ width: Int) throws -> UInt64 {
            var value: UInt64 = 0
            for (i, b) in try take(width).enumerated() { value |= UInt64(b) << (8 * UInt64(i)) }
            return value
        }

        private mutating func bigEndian(_ width: Int) throws -> UInt64 {
            try take(width).reduce(0) { $0 << 8 | UInt64($1) }
        }

        /// A length, or for the special string forms (top bits 11) nil and the form in `special`.
        private mutating func lengthOrSpecial() throws -> (length: Int?, special: UInt8) {
            let first = try byte()
            switch first >> 6 {
            case 0: return (Int(first & 0x3F), 0)
            case 1: return (Int(first & 0x3F) << 8 | Int(try byte()), 0)
            case 2:
                let n: UInt64
                switch first {
                case 0x80: n = try bigEndian(4)
                case 0x81: n = try bigEndian(8)
                default: throw Malformed()
                }
                guard n <= UInt64(Int.max) else { throw Malformed() }
                return (Int(n), 0)
            default: return (nil, first & 0x3F)
            }
        }

        mutating func length() throws -> Int {
            guard let n = try lengthOrSpecial().length else { throw Malformed() }
            return n
        }

        mutating func string() throws -> [UInt8] {
            let (plain, special) = try lengthOrSpecial()
            if let plain { return try take(plain) }
            switch special {
            case 0: return Array(String(Int8(bitPattern: try byte())).utf8)
            case 1: return Array(String(Int16(bitPattern: UInt16(try littleEndian(2)))).utf8)
            case 2: return Array(String(Int32(bitPattern: UInt32(try littleEndian(4)))).utf8)
            case 3:
                let compressed = try length()
                let size = try length()
                guard let bytes = LZF.decompress(try take(compressed), size: size), bytes.count == size else { throw Malformed() }
                return bytes
            default: throw Malformed()
            }
        }

        mutating func binaryDouble() throws -> Double {
            Double(bitPattern: try littleEndian(8))
        }

        /// The old zset score: a length byte (253 nan, 254 inf, 255 -inf) and that many digits.
        mutating func textDouble() throws -> Double {
            let n = try byte()
            switch n {
            case 253: return .nan
            case 254: return .infinity
            case 255: return -.infinity
            default:
                guard let value = Double(String(decoding: try take(Int(n)), as: UTF8.self)) else { throw Malformed() }
                return value
            }
        }
    }
}

/// Redis' listpack byte format (listpack.c), read only: the entries of a blob as strings.
enum ListpackReader {
    static func entries(_ blob: [UInt8]) throws -> [[UInt8]] {
        guard blob.count >= 7, blob.last == 0xFF else { throw DumpPayload.Malformed() }
        var total = 0
        for i in 0..<4 { total |= Int(blob[i]) << (8 * i) }
        guard total == blob.count else { throw DumpPayload.Malformed() }
        var out: [[UInt8]] = []
        var i = 6
        while i < blob.count - 1 {
            let start = i
            let b = blob[i]
            func need(_ n: Int) throws {
                guard i + n <= blob.count - 1 else { throw DumpPayload.Malformed() }
            }
            func int(_ bytes: Int, from: Int) -> Int64 {
                var v: UInt64 = 0
                for k in 0..<bytes { v |= UInt64(blob[from + k]) << (8 * UInt64(k)) }
                let shift = UInt64(64 - 8 * bytes)
                return Int64(bitPattern: v << shift) >> Int64(shift)
            }
            if b & 0x80 == 0 {
                out.append(Array(String(b & 0x7F).utf8))
                i += 1
            } else if b & 0xC0 == 0x80 {
                let n = Int(b & 0x3F)
                try need(1 + n)
                out.append(Array(blob[(i + 1)..<(i + 1 + n)]))
                i += 1 + n
            } else if b & 0xE0 == 0xC0 {
                try need(2)
                let raw = Int(b & 0x1F) << 8 | Int(blob[i + 1])
                out.append(Array(String(raw >= 1 << 12 ? raw - (1 << 13) : raw).utf8))
                i += 2
            } else if b & 0xF0 == 0xE0 {
                try need(2)
                let n = Int(b & 0x0F) << 8 | Int(blob[i + 1])
                try need(2 + n)
                out.append(Array(blob[(i + 2)..<(i + 2 + n)]))
                i += 2 + n
            } else {
                switch b {
                case 0xF0:
                    try need(5)
                    let n = Int(int(4, from: i + 1) & 0xFFFF_FFFF)
                    try need(5 + n)
                    out.append(Array(blob[(i + 5)..<(i + 5 + n)]))
                    i += 5 + n
                case 0xF1, 0xF2, 0xF3, 0xF4:
                    let width = [0xF1: 2, 0xF2: 3, 0xF3: 4, 0xF4: 8][Int(b)]!
                    try need(1 + width)
                    out.append(Array(String(int(width, from: i + 1)).utf8))
                    i += 1 + width
                default:
                    throw DumpPayload.Malformed()
                }
            }
            // Each entry ends with its own length, in 1 to 5 bytes.
            let entryLength = i - start
            let backlen = entryLength <= 127 ? 1 : entryLength < 16383 ? 2 : entryLength < 2_097_151 ? 3 : entryLength < 268_435_455 ? 4 : 5
            i += backlen
        }
        guard i == blob.count - 1 else { throw DumpPayload.Malformed() }
        let count = Int(blob[4]) | Int(blob[5]) << 8
        guard count == 0xFFFF || count == out.count else { throw DumpPayload.Malformed() }
        return out
    }
}

/// Redis' CRC-64 (Jones polynomial, reflected, no final xor), table-driven.
enum CRC64 {
    private static let table: [UInt64] = (0..<256).map { n -> UInt64 in
        var crc = UInt64(n)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x95AC_9329_AC4B_C9B5 : crc >> 1 }
        return crc
    }

    static func checksum<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
        var crc: UInt64 = 0
        for b in bytes { crc = table[Int((crc ^ UInt64(b)) & 0xFF)] ^ (crc >> 8) }
        return crc
    }
}
