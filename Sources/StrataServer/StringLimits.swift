import NIOCore
import StrataStore

/// The size limits on strings that commands build (SETRANGE, SETBIT, BITFIELD): Redis' own and
/// Strata's `--max-value-size`, the smaller applying, each with its own error text.
enum StringLimits {
    /// The longest string Redis builds: its `proto-max-bulk-len` default, 512 MiB.
    static let redisMaximum = 512 << 20

    /// Redis' error for a string over its limit.
    static let redisError = CommandError("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    /// Strata's error for a string over `--max-value-size` (as APPEND gives it).
    static let strataError = CommandError("ERR string exceeds maximum allowed size (max-value-size)")

    /// The length `offset + count` after checking it against both limits (Redis' text when its
    /// limit is the one exceeded, or when the sum overflows).
    static func checkedLength(_ offset: Int, _ count: Int, limit: Int) throws -> Int {
        let (total, overflow) = offset.addingReportingOverflow(count)
        guard !overflow, total <= redisMaximum else { throw redisError }
        guard total <= limit else { throw strataError }
        return total
    }
}

extension Commands {
    /// A copy of `key`'s value, or nil if it has none; the copy lets a command work on it
    /// without holding the memory tier's shard lock.
    static func value(of key: ByteBuffer, in store: TieredStore) throws -> [UInt8]? {
        try key.withUnsafeReadableBytes { k in try store.get(k) { [UInt8]($0) } }
    }
}
