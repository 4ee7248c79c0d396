/// Changing the memory tier's budget while the store runs (CONFIG SET maxmemory).
extension TieredStore {
    /// Sets the memory tier's budget to `bytes`, evicting least recently used entries (their
    /// disk copies stay) until it fits. Returns how many entries left memory. The write queue's
    /// limits, derived from the budget at start, keep their start-up values.
    @discardableResult
    public func resizeMemory(budget bytes: Int) -> Int {
        memory.resize(budget: bytes)
    }
}
