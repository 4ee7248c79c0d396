/// What WATCH remembers of a key: its newest record's version (value or tombstone) and whether
/// it was live. EXEC compares a new stamp with it: any write, delete or expiry since gives a
/// different stamp.
public struct KeyStamp: Sendable, Hashable {
    public var version: Version?
    public var live: Bool

    /// The stamp as text, to send to the node that checks it (`<version>/<0|1>`, `-` for none).
    public var text: String { "\(version?.text ?? "-")/\(live ? 1 : 0)" }

    public init(version: Version?, live: Bool) {
        self.version = version
        self.live = live
    }

    public init?(text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1] == "0" || parts[1] == "1" else { return nil }
        if parts[0] == "-" {
            version = nil
        } else {
            guard let version = Version(text: String(parts[0])) else { return nil }
            self.version = version
        }
        live = parts[1] == "1"
    }
}

extension TieredStore {
    /// `key`'s stamp now. Reads the write queue or the disk tier for the version: call it off
    /// the event loops.
    public func stamp(_ key: [UInt8]) -> KeyStamp {
        key.withUnsafeBytes { k in
            let hash = StableHash.hash(k)
            return locks.withLock(hash) {
                let live = current(k, hash: hash, now: currentTimeMilliseconds(), promote: false) != nil
                let version = currentRecord(k).flatMap { Self.version(ofRecord: $0) }
                return KeyStamp(version: version, live: live)
            }
        }
    }
}
