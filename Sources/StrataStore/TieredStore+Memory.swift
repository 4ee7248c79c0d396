/// What the store holds in memory outside the memory tier, for the process's memory metrics.
extension TieredStore {
    /// Bytes of keys and records queued for the disk tier and being applied to it now.
    public var writeBacklogBytes: Int { writer.backlog.load(ordering: .relaxed) }

    /// Queued bytes past which writes wait for the disk tier (derived from the memory budget).
    public var writeBacklogLimit: Int { writer.backlogLimit }
}
