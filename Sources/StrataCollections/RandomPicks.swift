/// Random positions for HRANDFIELD, SRANDMEMBER and ZRANDMEMBER over a collection whose
/// elements can be fetched by position.
enum RandomPicks {
    /// For `count >= 0`, min(count, size) distinct positions (all positions, shuffled, when
    /// `count` covers the size); for `count < 0`, `-count` positions with repeats.
    static func indices(size: Int, count: Int, using rng: inout some RandomNumberGenerator) -> [Int] {
        guard size > 0, count != 0 else { return [] }
        if count < 0 {
            let n = count == Int.min ? Int.max : -count
            return (0..<n).map { _ in Int.random(in: 0..<size, using: &rng) }
        }
        if count >= size { return Array(0..<size).shuffled(using: &rng) }
        if count * 3 > size {
            // Dense: a partial Fisher-Yates shuffle of all positions.
            var all = Array(0..<size)
            for i in 0..<count { all.swapAt(i, Int.random(in: i..<size, using: &rng)) }
            return Array(all[0..<count])
        }
        var chosen = Set<Int>()
        var order: [Int] = []
        while order.count < count {
            let i = Int.random(in: 0..<size, using: &rng)
            if chosen.insert(i).inserted { order.append(i) }
        }
        return order
    }
}
