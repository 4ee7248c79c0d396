import CLMDB

/// Work the writer thread does on the disk tier besides applying writes: evicting the oldest
/// entries when the tier nears its budget, and sweeping expired records and tombstones.
extension DiskTier {
    /// The tier starts evicting above this share of its budget...
    static let evictAbove = 0.90
    /// ...and evicts down to this share.
    static let evictTo = 0.80

    /// Where an eviction episode stands between commits.
    struct EvictionState {
        /// The storage key the sweep continues after (empty: from the start).
        var hand: [UInt8] = []
        /// Records written at or before this version clock are evicted; nil: not in an episode.
        var cutoff: UInt64?
        /// Records visited in this episode, to notice a full circle.
        var visited = 0
        /// Full circles that freed too little; after two, hot keys lose their second chance.
        var circles = 0
    }

    /// Evicts the oldest entries (by write time, the version's clock) until the tier uses at most
    /// `target` bytes, visiting at most `maxVisits` records per call so that one commit never
    /// stalls for long; the next commit continues where this one stopped.
    ///
    /// LMDB keeps keys in key order, not age order, and an age index would double every write. So
    /// an episode starts by sampling the ages of up to 8,192 records spread over the whole tier
    /// and taking the age below which the excess share of records lies (plus 2%); then a hand
    /// sweeps the key space deleting what is older than that cutoff. A key that is in the memory
    /// tier right now was used recently (written, or read and promoted): it gets a second chance
    /// and is skipped, unless two full circles freed too little. Returns the user keys evicted.
    func evict(
        to target: Int, state: inout EvictionState, maxVisits: Int, in txn: borrowing LMDBTransaction,
        isHot: (_ userKey: [UInt8]) -> Bool
    ) throws -> [[UInt8]] {
        var evicted: [[UInt8]] = []
        var visits = 0
        while usedBytes(txn) > target && visits < maxVisits {
            let entries = Int(txn.stat(data).ms_entries)
            guard entries > 0 else { break }
            if state.cutoff == nil {
                let used = Double(usedBytes(txn))
                let share = min(1, (used - Double(target)) / used + 0.02)
                let stride = max(1, entries / 8192)
                var ages: [UInt64] = []
                ages.reserveCapacity(min(entries, 8192) + 1)
                var i = 0
                try txn.forEach(data, from: nil) { _, record in
                    if i % stride == 0 {
                        ages.append((try? Record.header(record, verify: false))?.version.clock ?? 0)
                    }
                    i += 1
                    return true
                }
                ages.sort()
                state.cutoff = ages[min(ages.count - 1, Int(Double(ages.count) * share))]
                state.visited = 0
            }
            let cutoff = state.cutoff!
            let spareHot = state.circles < 2
            var victims: [(storageKey: [UInt8], userKey: [UInt8])] = []
            var reachedEnd = true
            var last: [UInt8] = state.hand
            let budgetForThisRound = min(maxVisits - visits, 4096)
            var seen = 0
            try state.hand.withUnsafeBytes { start in
                try txn.forEach(data, from: state.hand.isEmpty ? nil : start) { key, record in
                    if !state.hand.isEmpty && key.elementsEqual(state.hand) { return true }
                    if seen >= budgetForThisRound {
                        reachedEnd = false
                        return false
                    }
                    seen += 1
                    last = [UInt8](key)
                    let age = (try? Record.header(record, verify: false))?.version.clock ?? 0
                    guard age <= cutoff else { return true }
                    let user = userKey(storageKey: key, record: record) ?? [UInt8](key)
                    if spareHot && isHot(user) { return true }
                    victims.append(([UInt8](key), user))
                    return true
                }
            }
            visits += seen
            state.visited += seen
            for victim in victims {
                try victim.storageKey.withUnsafeBytes { _ = try txn.delete(data, $0) }
                evicted.append(victim.userKey)
            }
            state.hand = reachedEnd ? [] : last
            if state.visited >= entries + victims.count {
                // A full circle without reaching the target: sample again with what is left.
                state.circles += 1
                state.cutoff = nil
            }
            if seen == 0 && victims.isEmpty && reachedEnd && state.hand.isEmpty && entries == 0 { break }
        }
        if usedBytes(txn) <= target {
            state.cutoff = nil
            state.circles = 0
        }
        return evicted
    }

    /// Deletes expired records and tombstones among the next `limit` entries of each database
    /// after the hands. Returns the user keys of expired values removed.
    func sweepExpired(
        now: Int64, limit: Int, dataHand: inout [UInt8], tombstoneHand: inout [UInt8],
        in txn: borrowing LMDBTransaction
    ) throws -> Int {
        var removed = 0
        for (dbi, isData) in [(data, true), (tombstones, false)] {
            var expired: [[UInt8]] = []
            var last: [UInt8] = []
            var seen = 0
            var hand = isData ? dataHand : tombstoneHand
            try hand.withUnsafeBytes { start in
                try txn.forEach(dbi, from: hand.isEmpty ? nil : start) { key, record in
                    if key.elementsEqual(hand) { return true }
                    seen += 1
                    if seen > limit { return false }
                    last = [UInt8](key)
                    if let header = try? Record.header(record, verify: false),
                        header.expiry != 0, header.expiry <= now
                    {
                        expired.append([UInt8](key))
                    }
                    return true
                }
            }
            for key in expired {
                try key.withUnsafeBytes { _ = try txn.delete(dbi, $0) }
            }
            if isData { removed += expired.count }
            // Reached the end: start again from the beginning next time.
            hand = seen > limit ? last : []
            if isData { dataHand = hand } else { tombstoneHand = hand }
        }
        return removed
    }
}
