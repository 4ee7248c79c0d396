import NIOCore
import RESP
import StrataStore

extension Commands {
    static let ranges: [CommandSpec] = [
        rangeCommand("getrange"),
        rangeCommand("substr"),

        CommandSpec("setrange", arity: 4, flags: .write, keys: (1, 1, 1)) { inv in
            let offset = try inv.integer(2)
            guard offset >= 0 else { throw CommandError("ERR offset is out of range") }
            let (key, patch, store, limit) = (inv.bytes(1), inv.bytes(3), inv.store, inv.server.configuration.maxValueSize)
            return try inv.run(near: [inv.arguments[1]]) { out, _ in
                let length = try store.update(key) { current -> (Mutation, Int) in
                    // Writing nothing changes nothing: not even a missing key is created.
                    guard !patch.isEmpty else { return (.none, current?.value.count ?? 0) }
                    let end = try StringLimits.checkedLength(offset, patch.count, limit: limit)
                    var value = current?.value ?? []
                    if value.count < end { value.append(contentsOf: repeatElement(0, count: end - value.count)) }
                    value.replaceSubrange(offset..<end, with: patch)
                    return (.set(value: value, expiresAt: current?.expiresAt ?? 0), value.count)
                }
                out.writeRESPInteger(length)
            }
        },

        CommandSpec("incrbyfloat", arity: 3, flags: .write, keys: (1, 1, 1)) { inv in
            let (key, increment, store) = (inv.bytes(1), inv.bytes(2), inv.store)
            return try inv.run(near: [inv.arguments[1]]) { out, _ in
                let text = try store.update(key) { current -> (Mutation, [UInt8]) in
                    // Redis reads the stored value before the increment; both give the same error.
                    var value: LongDouble.Value = 0
                    if let current {
                        guard let parsed = LongDouble.parse(current.value) else { throw CommandError.notFloat }
                        value = parsed
                    }
                    guard let by = LongDouble.parse(increment) else { throw CommandError.notFloat }
                    let sum = value + by
                    guard sum.isFinite else { throw CommandError("ERR increment would produce NaN or Infinity") }
                    let text = LongDouble.format(sum)
                    return (.set(value: text, expiresAt: current?.expiresAt ?? 0), text)
                }
                out.writeRESPBulk(text)
            }
        },

        CommandSpec("lcs", arity: -3, flags: .oneNode, keys: (1, 2, 1)) { inv in
            let options = try LCSOptions(inv)
            let (keys, store, limit) = (Array(inv.arguments[1...2]), inv.store, inv.server.configuration.maxValueSize)
            // Its table can take up to 512 MiB and seconds to fill: always off the event loop.
            return try inv.offload { out, version in
                let a = try value(of: keys[0], in: store) ?? []
                let b = try value(of: keys[1], in: store) ?? []
                try LongestCommonSubsequence(a, b, memoryLimit: min(limit, StringLimits.redisMaximum))
                    .write(options, to: &out, version: version)
            }
        },
    ]

    /// GETRANGE and its old name SUBSTR: the bytes from `start` to `end` inclusive, negative
    /// indexes counting from the end, clamped to the value (Redis' rules, empty if none).
    static func rangeCommand(_ name: String) -> CommandSpec {
        CommandSpec(name, arity: 4, keys: (1, 1, 1)) { inv in
            let (start, end) = (try inv.integer(2), try inv.integer(3))
            let (key, store) = (inv.arguments[1], inv.store)
            return try inv.run(near: [key]) { out, _ in
                let slice = try key.withUnsafeReadableBytes { k in
                    try store.get(k) { value -> [UInt8] in
                        guard let range = byteRange(start, end, count: value.count) else { return [] }
                        return [UInt8](value[range])
                    }
                }
                out.writeRESPBulk(slice ?? [])
            }
        }
    }

    /// The bytes GETRANGE `start end` covers in a value of `count` bytes, or nil if none.
    static func byteRange(_ start: Int, _ end: Int, count: Int) -> Range<Int>? {
        if start < 0 && end < 0 && start > end { return nil }
        var (first, last) = (start, end)
        if first < 0 { first += count }
        if last < 0 { last += count }
        first = max(first, 0)
        last = min(max(last, 0), count - 1)
        guard count > 0, first <= last else { return nil }
        return first..<(last + 1)
    }
}
