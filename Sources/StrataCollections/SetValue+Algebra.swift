extension SetValue {
    /// The members in every one of `sets` (SINTER); a missing key is an empty set. Iterates the
    /// smallest set and probes the others, as Redis: O(N*M) worst case, N the smallest size.
    public static func intersection(_ sets: [SetValue]) -> [[UInt8]] {
        intersection(sets, limit: 0)
    }

    /// How many members are in every one of `sets`, stopping at `limit` when it is above 0 (SINTERCARD).
    public static func intersectionCount(_ sets: [SetValue], limit: Int) -> Int {
        intersection(sets, limit: limit).count
    }

    /// The intersection, stopping after `limit` members when `limit > 0`.
    private static func intersection(_ sets: [SetValue], limit: Int) -> [[UInt8]] {
        guard let smallest = sets.indices.min(by: { sets[$0].count < sets[$1].count }),
            sets[smallest].count > 0
        else { return [] }
        var out: [[UInt8]] = []
        for m in sets[smallest].members {
            var inAll = true
            for i in sets.indices where i != smallest && !sets[i].contains(m) {
                inAll = false
                break
            }
            if inAll {
                out.append(m)
                if limit > 0 && out.count >= limit { break }
            }
        }
        return out
    }

    /// The members in any of `sets`, each once (SUNION).
    public static func union(_ sets: [SetValue]) -> [[UInt8]] {
        var seen = Set<[UInt8]>()
        var out: [[UInt8]] = []
        for s in sets {
            for m in s.members where seen.insert(m).inserted { out.append(m) }
        }
        return out
    }

    /// The members of the first set in none of the others (SDIFF).
    public static func difference(_ sets: [SetValue]) -> [[UInt8]] {
        guard let first = sets.first else { return [] }
        let others = sets.dropFirst()
        return first.members.filter { m in !others.contains { $0.contains(m) } }
    }

    /// A set of `members` (duplicates ignored) encoded as adding them one by one under `limits`
    /// would leave it: what SINTERSTORE, SUNIONSTORE and SDIFFSTORE store.
    public init(members: [[UInt8]], limits: CollectionLimits) {
        if let first = members.first {
            self.init(sizeHint: members.count, firstMember: first, limits: limits)
        } else {
            self.init()
        }
        for m in members { add(m, limits: limits) }
    }
}
