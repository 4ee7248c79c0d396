/// Operations on several keys at once (RENAME, RENAMENX, COPY), and the size of one key.
extension TieredStore {
    /// Reads the current entries of `keys` (distinct keys; from memory, the write queue or disk),
    /// lets `body` choose one mutation per key, and applies them, all under every key's stripe
    /// lock: no other write of these keys and no read that misses memory runs in between.
    /// Stores and expiry changes are applied before deletions, so a reader that takes no lock
    /// (a memory hit) may briefly see a renamed key under both names, never under neither.
    /// `promote`: keys read from disk are brought into memory (a read's access).
    public func updateAll<R>(_ keys: [[UInt8]], promote: Bool = false, _ body: ([Entry?]) throws -> ([Mutation], R)) throws -> R {
        let hashes = keys.map { key in key.withUnsafeBytes { StableHash.hash($0) } }
        return try locks.withLocks(hashes) {
            let now = currentTimeMilliseconds()
            let entries = keys.enumerated().map { i, key in
                key.withUnsafeBytes { current($0, hash: hashes[i], now: now, promote: promote) }
            }
            let (mutations, result) = try body(entries)
            precondition(mutations.count == keys.count, "one mutation per key")
            for (i, mutation) in mutations.enumerated() {
                try keys[i].withUnsafeBytes { k in
                    switch mutation {
                    case .none, .delete:
                        break
                    case .set(let value, let expiresAt, let kind):
                        try value.withUnsafeBytes { try write(k, hash: hashes[i], value: $0, expiresAt: expiresAt, kind: kind) }
                    case .expire(let at):
                        guard let entry = entries[i] else { break }
                        if at != 0 && at <= now {
                            try remove(k, hash: hashes[i], now: now)
                        } else {
                            try entry.value.withUnsafeBytes { try write(k, hash: hashes[i], value: $0, expiresAt: at, kind: entry.kind) }
                        }
                    }
                }
            }
            for (i, mutation) in mutations.enumerated() where mutation == .delete && entries[i] != nil {
                try keys[i].withUnsafeBytes { try remove($0, hash: hashes[i], now: now) }
            }
            return result
        }
    }

    /// Moves `source`'s value and expiry to `destination`, replacing it unless `onlyIfAbsent`
    /// (RENAMENX), atomically. Returns nil if `source` does not exist, else whether it moved.
    /// Renaming a key onto itself changes nothing (true if it exists, as Redis answers).
    public func rename(_ source: [UInt8], to destination: [UInt8], onlyIfAbsent: Bool = false) throws -> Bool? {
        if source == destination { return exists(source) ? !onlyIfAbsent : nil }
        return try updateAll([source, destination]) { entries -> ([Mutation], Bool?) in
            guard let entry = entries[0] else { return ([.none, .none], nil) }
            if onlyIfAbsent && entries[1] != nil { return ([.none, .none], false) }
            return ([.delete, .set(value: entry.value, expiresAt: entry.expiresAt, kind: entry.kind)], true)
        }
    }

    /// Copies `source`'s value and expiry to `destination` (distinct keys), atomically; an
    /// existing destination is kept unless `replace`. Returns whether it copied.
    public func copy(_ source: [UInt8], to destination: [UInt8], replace: Bool = false) throws -> Bool {
        precondition(source != destination, "copying a key onto itself")
        return try updateAll([source, destination]) { entries -> ([Mutation], Bool) in
            guard let entry = entries[0], replace || entries[1] == nil else { return ([.none, .none], false) }
            return ([.none, .set(value: entry.value, expiresAt: entry.expiresAt, kind: entry.kind)], true)
        }
    }

    /// An estimate of the bytes `key` takes on this node, or nil if it does not exist: its
    /// record as stored on disk (header, stored key, possibly compressed value) plus what the
    /// memory tier charges for it when cached there (its block, slot and index share).
    public func memoryUsage(of key: [UInt8]) -> Int? {
        let info = tier(of: key)
        guard info.tier != .none else { return nil }
        let diskBytes = key.count + max(info.storedLength, 0)
        guard info.tier == .memory else { return diskBytes }
        let expires = (expiry(of: key) ?? 0) != 0
        let block = LRUTable.charge(keyCount: key.count, valueCount: info.valueLength, expires: expires)
        // A slot (block pointer and LRU links) and about 1.25 index words (kept at most 4/5 full).
        let structure = MemoryLayout<LRUTable.Slot>.stride + 10
        return diskBytes + block + structure
    }
}
