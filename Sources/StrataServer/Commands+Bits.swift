import NIOCore
import RESP
import StrataStore

extension Commands {
    static let bits: [CommandSpec] = [
        CommandSpec("setbit", arity: 4, flags: .write, keys: (1, 1, 1)) { inv in
            let offset = try bitOffset(inv.arguments[2])
            guard let bit = Invocation.parseInteger(inv.arguments[3].readableBytesView), bit == 0 || bit == 1 else {
                throw CommandError("ERR bit is not an integer or out of range")
            }
            let (key, store, limit) = (inv.bytes(1), inv.store, inv.server.configuration.maxValueSize)
            return try inv.run(near: [inv.arguments[1]]) { out, _ in
                let old = try store.update(key) { current -> (Mutation, Int) in
                    var value = current?.value ?? []
                    let byte = offset >> 3
                    let grows = value.count <= byte
                    if grows {
                        guard byte < limit else { throw StringLimits.strataError }
                        value.append(contentsOf: repeatElement(0, count: byte + 1 - value.count))
                    }
                    let mask = UInt8(1) << (7 - UInt8(offset & 7))
                    let old = value[byte] & mask != 0 ? 1 : 0
                    guard current == nil || grows || old != bit else { return (.none, old) }
                    if bit == 1 { value[byte] |= mask } else { value[byte] &= ~mask }
                    return (.set(value: value, expiresAt: current?.expiresAt ?? 0), old)
                }
                out.writeRESPInteger(old)
            }
        },

        CommandSpec("getbit", arity: 3, keys: (1, 1, 1)) { inv in
            let offset = try bitOffset(inv.arguments[2])
            let (key, store) = (inv.arguments[1], inv.store)
            return try inv.run(near: [key]) { out, _ in
                let bit = try key.withUnsafeReadableBytes { k in
                    try store.get(k) { value in offset >> 3 < value.count ? Int(value[offset >> 3] >> (7 - UInt8(offset & 7))) & 1 : 0 }
                }
                out.writeRESPInteger(bit ?? 0)
            }
        },

        CommandSpec("bitcount", arity: -2, keys: (1, 1, 1)) { inv in
            let parsed = Result { try BitRangeArguments(.bitcount, inv.arguments, from: 2) }
            let (key, store) = (inv.arguments[1], inv.store)
            return try inv.run(near: [key]) { out, _ in
                guard let value = try value(of: key, in: store) else { return out.writeRESPInteger(0) }
                guard let range = try parsed.get().resolve(count: value.count) else { return out.writeRESPInteger(0) }
                var count = 0
                for byte in range.bytes { count += value[byte].nonzeroBitCount }
                count -= (value[range.bytes.lowerBound] & range.firstMask).nonzeroBitCount
                count -= (value[range.bytes.upperBound] & range.lastMask).nonzeroBitCount
                out.writeRESPInteger(count)
            }
        },

        CommandSpec("bitpos", arity: -3, keys: (1, 1, 1)) { inv in
            guard let bit = Invocation.parseInteger(inv.arguments[2].readableBytesView) else { throw CommandError.notInteger }
            guard bit == 0 || bit == 1 else { throw CommandError("ERR The bit argument must be 1 or 0.") }
            let parsed = Result { try BitRangeArguments(.bitpos, inv.arguments, from: 3) }
            let (key, store) = (inv.arguments[1], inv.store)
            return try inv.run(near: [key]) { out, _ in
                // A missing key is an endless run of zeros.
                guard let value = try value(of: key, in: store) else { return out.writeRESPInteger(bit == 1 ? -1 : 0) }
                let arguments = try parsed.get()
                guard let range = arguments.resolve(count: value.count) else { return out.writeRESPInteger(-1) }
                out.writeRESPInteger(firstBit(bit == 1, in: value, range, endGiven: arguments.end != nil))
            }
        },

        CommandSpec("bitop", arity: -4, flags: [.write, .oneNode], keys: (2, -1, 1)) { inv in
            // How a byte of each further source joins the result; NOT has one source, inverted.
            let combine: @Sendable (UInt8, UInt8) -> UInt8
            let invert = inv.upper(1) == "NOT"
            switch inv.upper(1) {
            case "AND": combine = { $0 & $1 }
            case "OR": combine = { $0 | $1 }
            case "XOR": combine = { $0 ^ $1 }
            case "NOT":
                guard inv.arguments.count == 4 else { throw CommandError("ERR BITOP NOT must be called with a single source key.") }
                combine = { byte, _ in byte }
            default: throw CommandError.syntax
            }
            let (destination, sources, store) = (inv.bytes(2), Array(inv.arguments[3...]), inv.store)
            return try inv.run(near: Array(inv.arguments[2...])) { out, _ in
                // A missing source is an empty string; shorter ones are padded with zeros.
                let values = try sources.map { try value(of: $0, in: store) ?? [] }
                let length = values.map(\.count).max() ?? 0
                var result = [UInt8](repeating: 0, count: length)
                for i in 0..<length {
                    var byte = i < values[0].count ? values[0][i] : 0
                    for other in values.dropFirst() { byte = combine(byte, i < other.count ? other[i] : 0) }
                    result[i] = invert ? ~byte : byte
                }
                // An empty result deletes the destination, as in Redis; a stored one has no TTL.
                try store.update(destination, accepting: nil) { current -> (Mutation, Void) in
                    (length > 0 ? .set(value: result, expiresAt: 0) : current == nil ? .none : .delete, ())
                }
                out.writeRESPInteger(length)
            }
        },

        bitfieldCommand("bitfield", readOnly: false),
        bitfieldCommand("bitfield_ro", readOnly: true),
    ]

    /// BITFIELD and BITFIELD_RO. Only GETs: a read of the value (a missing key reads as zeros);
    /// any SET or INCRBY (refused by BITFIELD_RO): one update that first grows the value with
    /// zeros to the last bit written, then runs the operations in order.
    static func bitfieldCommand(_ name: String, readOnly: Bool) -> CommandSpec {
        CommandSpec(name, arity: -2, flags: readOnly ? [] : .write, keys: (1, 1, 1)) { inv in
            let operations = try BitfieldOperation.parse(inv)
            let lastBit = operations.compactMap(\.lastWrittenBit).max()
            if lastBit != nil && readOnly { throw CommandError("ERR BITFIELD_RO only supports the GET subcommand") }
            let (key, store, limit) = (inv.arguments[1], inv.store, inv.server.configuration.maxValueSize)
            return try inv.run(near: [key]) { out, version in
                var replies: [Int64?]
                if let lastBit {
                    replies = try store.update(Array(key.readableBytesView)) { current -> (Mutation, [Int64?]) in
                        var value = current?.value ?? []
                        let length = lastBit >> 3 + 1
                        if value.count < length {
                            guard length <= limit else { throw StringLimits.strataError }
                            value.append(contentsOf: repeatElement(0, count: length - value.count))
                        }
                        let replies = operations.map { $0.run(on: &value) }
                        return (.set(value: value, expiresAt: current?.expiresAt ?? 0), replies)
                    }
                } else {
                    var value = try value(of: key, in: store) ?? []
                    replies = operations.map { $0.run(on: &value) }
                }
                out.writeRESPArrayHeader(replies.count)
                for reply in replies {
                    if let reply { out.writeRESPInteger(Int(reply)) } else { out.writeRESPNull(version) }
                }
            }
        }
    }

    /// A bit offset argument (SETBIT, GETBIT, BITFIELD): a non-negative integer below 2^32
    /// (512 MiB of bits); with a `unit` (BITFIELD's type width), `#n` means n units.
    static func bitOffset(_ argument: ByteBuffer, unit: Int = 0) throws -> Int {
        var digits = argument.readableBytesView[...]
        let inUnits = unit > 0 && digits.first == UInt8(ascii: "#")
        if inUnits { digits = digits.dropFirst() }
        guard var offset = Invocation.parseInteger(digits) else { throw bitOffsetError }
        if inUnits { offset = offset &* unit }  // Redis multiplies without an overflow check
        guard offset >= 0, offset >> 3 < StringLimits.redisMaximum else { throw bitOffsetError }
        return offset
    }

    static let bitOffsetError = CommandError("ERR bit offset is not an integer or out of range")

    /// The bytes of a BITCOUNT or BITPOS range, and the masks of the bits in its first and last
    /// bytes that fall outside it (BIT ranges only).
    struct BitRange {
        var bytes: ClosedRange<Int>
        var firstMask: UInt8 = 0
        var lastMask: UInt8 = 0
    }

    /// BITCOUNT's and BITPOS's `[start [end [BYTE|BIT]]]`, parsed before the key is read but
    /// reported only if it exists (Redis 7.0 answers a missing key whatever follows it).
    struct BitRangeArguments: Sendable {
        enum Command: Sendable { case bitcount, bitpos }
        let command: Command
        /// nil: the whole string.
        var start: Int?
        /// nil: to the end of the string (BITPOS only).
        var end: Int?
        var inBits = false

        /// Parses the arguments from `first` on, in each command's order and with its errors.
        init(_ command: Command, _ arguments: [ByteBuffer], from first: Int) throws {
            self.command = command
            let allowed = command == .bitcount ? [2, 4, 5] : [3, 4, 5, 6]
            guard allowed.contains(arguments.count) else { throw CommandError.syntax }
            guard arguments.count > first else { return }
            start = try Self.integer(arguments[first])
            // BITCOUNT reads the end before the unit, BITPOS the unit first.
            if command == .bitcount { end = try Self.integer(arguments[first + 1]) }
            if arguments.count == first + 3 {
                switch String(buffer: arguments[first + 2]).uppercased() {
                case "BIT": inBits = true
                case "BYTE": inBits = false
                default: throw CommandError.syntax
                }
            }
            if command == .bitpos && arguments.count > first + 1 { end = try Self.integer(arguments[first + 1]) }
        }

        private static func integer(_ argument: ByteBuffer) throws -> Int {
            guard let value = Invocation.parseInteger(argument.readableBytesView) else { throw CommandError.notInteger }
            return value
        }

        /// The range in a value of `count` bytes (Redis' clamping), or nil when it is empty.
        func resolve(count: Int) -> BitRange? {
            guard var start else { return count == 0 ? nil : BitRange(bytes: 0...(count - 1)) }
            var end = self.end ?? count - 1
            let total = inBits ? count << 3 : count
            // BITCOUNT counts nothing in a backward range of negative indexes; BITPOS has no
            // such rule (its range is clamped first).
            if command == .bitcount && start < 0 && end < 0 && start > end { return nil }
            if start < 0 { start += total }
            if end < 0 { end += total }
            start = max(start, 0)
            end = min(max(end, 0), total - 1)
            guard start <= end else { return nil }
            guard inBits else { return BitRange(bytes: start...end) }
            return BitRange(
                bytes: (start >> 3)...(end >> 3), firstMask: ~UInt8((1 << (8 - (start & 7))) - 1),
                lastMask: UInt8((1 << (7 - (end & 7))) - 1))
        }
    }

    /// BITPOS's answer in `range` of `value` (Redis 7.0's bitposCommand): the first bit equal
    /// to `one`; looking for a zero with no end given, the string continues with zeros.
    static func firstBit(_ one: Bool, in value: [UInt8], _ range: BitRange, endGiven: Bool) -> Int {
        // The bytes searched, with the bits outside the range forced to the other value.
        var bytes = Array(value[range.bytes])
        if one {
            bytes[0] &= ~range.firstMask
            bytes[bytes.count - 1] &= ~range.lastMask
        } else {
            bytes[0] |= range.firstMask
            bytes[bytes.count - 1] |= range.lastMask
        }
        let skip: UInt8 = one ? 0 : 0xff
        guard let index = bytes.firstIndex(where: { $0 != skip }) else {
            // Nothing found: -1, except a zero search of an open range, which finds the first
            // bit past the string.
            return one || endGiven ? -1 : (range.bytes.upperBound + 1) << 3
        }
        let byte = one ? bytes[index] : ~bytes[index]
        return (range.bytes.lowerBound + index) << 3 + byte.leadingZeroBitCount
    }
}
