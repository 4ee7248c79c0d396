/// A sorted set member with its score.
public struct ScoredMember: Sendable, Equatable {
    public var member: [UInt8]
    public var score: Double

    public init(member: [UInt8], score: Double) {
        self.member = member
        self.score = score
    }

    /// Redis' order: by score, then by member bytes.
    @inline(__always)
    static func isBefore(_ a: ScoredMember, _ score: Double, _ member: [UInt8]) -> Bool {
        a.score < score || (a.score == score && bytesLess(a.member, member))
    }
}

/// One end of a score interval (ZRANGEBYSCORE's `1`, `(1`, `-inf`, `+inf`).
public struct ScoreBound: Sendable, Equatable {
    public var value: Double
    /// Whether the end itself is excluded (`(`).
    public var exclusive: Bool

    public init(_ value: Double, exclusive: Bool = false) {
        self.value = value
        self.exclusive = exclusive
    }

    /// Whether `score` is at or past this bound taken as a minimum.
    @inline(__always)
    func admitsAsMin(_ score: Double) -> Bool { exclusive ? score > value : score >= value }

    /// Whether `score` is past this bound taken as a maximum.
    @inline(__always)
    func exceedsAsMax(_ score: Double) -> Bool { exclusive ? score >= value : score > value }
}

/// One end of a lex interval (ZRANGEBYLEX's `-`, `+`, `[a`, `(a`).
public enum LexBound: Sendable, Equatable {
    case negativeInfinity
    case positiveInfinity
    case inclusive([UInt8])
    case exclusive([UInt8])

    /// Whether `member` is at or past this bound taken as a minimum.
    func admitsAsMin(_ member: [UInt8]) -> Bool {
        switch self {
        case .negativeInfinity: true
        case .positiveInfinity: false
        case .inclusive(let b): !bytesLess(member, b)
        case .exclusive(let b): bytesLess(b, member)
        }
    }

    /// Whether `member` is past this bound taken as a maximum.
    func exceedsAsMax(_ member: [UInt8]) -> Bool {
        switch self {
        case .negativeInfinity: true
        case .positiveInfinity: false
        case .inclusive(let b): bytesLess(b, member)
        case .exclusive(let b): !bytesLess(member, b)
        }
    }
}

/// ZADD's flags (ZINCRBY is `incr`). Combinations Redis rejects (NX with XX, GT or LT; GT
/// with LT; INCR with several pairs) are the command layer's to refuse.
public struct ZAddOptions: Sendable, Equatable {
    public var nx = false
    public var xx = false
    public var gt = false
    public var lt = false
    public var incr = false

    public init(nx: Bool = false, xx: Bool = false, gt: Bool = false, lt: Bool = false, incr: Bool = false) {
        self.nx = nx
        self.xx = xx
        self.gt = gt
        self.lt = lt
        self.incr = incr
    }
}

/// What one ZADD pair did; CH counts `added` and `updated`, plain ZADD `added`, and INCR
/// replies with the score or nil for `skipped`.
public enum ZAddOutcome: Sendable, Equatable {
    /// A new member with this score.
    case added(Double)
    /// An existing member whose score changed to this.
    case updated(Double)
    /// An existing member whose score stayed this (same score given).
    case unchanged(Double)
    /// Nothing done: NX on an existing member, XX on a missing one, or GT/LT not met.
    case skipped

    /// The member's score after the call, nil when skipped.
    public var score: Double? {
        switch self {
        case .added(let s), .updated(let s), .unchanged(let s): s
        case .skipped: nil
        }
    }
}
