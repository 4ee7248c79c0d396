/// Waiting for writes to reach disk.
extension TieredStore {
    /// A ticket covering every write queued so far.
    public var writeTicket: WriteTicket {
        WriteTicket(sequence: writer.state.withLock { $0.nextSequence - 1 })
    }

    /// Calls `completion` once the writes covered by `ticket` are as durable as the fsync mode
    /// promises: synced under `always`, at once under `everysec` and `never`. `completion` gets an
    /// error if the disk tier failed to write them.
    public func whenDurable(_ ticket: WriteTicket, _ completion: @escaping @Sendable (StoreError?) -> Void) {
        guard configuration.fsync == .always else {
            completion(nil)
            return
        }
        writer.whenDurable(ticket.sequence, completion)
    }

    /// Async form of `whenDurable`.
    public func waitDurable(_ ticket: WriteTicket) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            whenDurable(ticket) { error in
                if let error { continuation.resume(throwing: error) } else { continuation.resume() }
            }
        }
    }

    /// Applies every queued write to LMDB and syncs it, whatever the fsync mode.
    public func sync() throws {
        try blockUntil { writer.sync($0) }
    }

    /// Waits until every write queued so far is applied to LMDB (not necessarily synced).
    func waitCommitted() throws {
        try blockUntil { writer.whenApplied($0) }
    }

    /// Starts `request` with a completion and blocks this thread until it is called.
    private func blockUntil(_ request: (@escaping Writer.Completion) -> Void) throws {
        let done = Wakeup()
        let result = ResultBox()
        request { error in
            result.set(error)
            done.signal()
        }
        done.wait()
        if let error = result.get() { throw error }
    }

    /// Whether the disk tier's write queue is full (writes come faster than LMDB takes them):
    /// a server should hold back new writes until it is not. Lock-free.
    /// (Not while the disk tier refuses writes: those get their error at once.)
    public var isWriteBacklogged: Bool { writer.isBacklogged && writer.failure == nil && !isClosed.load(ordering: .relaxed) }

    /// Whether every page of the disk tier is in the page cache (checked every two seconds), so a
    /// read that misses memory takes microseconds and cannot wait on the disk: a server may then
    /// run it where it is instead of handing it to a disk thread. Lock-free.
    public var diskReadsAreResident: Bool { writer.diskResident.load(ordering: .relaxed) }

    /// Snapshots the memory tier's hot keys now (it also happens periodically and at close).
    public func snapshotHotKeys() {
        writer.requestSnapshot()
    }
}

import Synchronization

final class ResultBox: Sendable {
    private let value = Locked<StoreError?>(nil)
    func set(_ error: StoreError?) { value.withLock { $0 = error } }
    func get() -> StoreError? { value.withLock { $0 } }
}
