// A process that writes to a store and reports each acknowledged write on stdout, so that a test
// can kill it with SIGKILL at any moment and check what survived.
//
// Usage: strata-store-writer PATH FSYNC START COUNT VALUE_BYTES
// Prints "ready" once open, then "ack N" after write N is acknowledged (under `always`, after it
// is synced), then "done".
import Dispatch
import Foundation
import StrataStore

let args = CommandLine.arguments
guard args.count == 6, let fsync = FsyncMode(rawValue: args[2]), let start = Int(args[3]), let count = Int(args[4]),
    let valueBytes = Int(args[5])
else {
    FileHandle.standardError.write("usage: strata-store-writer PATH always|everysec|never START COUNT VALUE_BYTES\n".data(using: .utf8)!)
    exit(2)
}

/// Writes a line straight to fd 1, unbuffered, so nothing acknowledged is lost in a buffer at SIGKILL.
func emit(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
}

do {
    let store = try TieredStore(
        path: args[1],
        configuration: StoreConfiguration(memoryBudget: 1 << 20, diskBudget: 256 << 20, fsync: fsync, snapshotInterval: 0))
    emit("ready")
    for i in start..<start + count {
        let key = Array("key:\(i)".utf8)
        var value = Array("value:\(i):".utf8)
        value += [UInt8](repeating: UInt8(i % 251), count: max(0, valueBytes - value.count))
        try store.set(key, value)
        let done = DispatchSemaphore(value: 0)
        store.whenDurable(store.writeTicket) { error in
            if let error { FileHandle.standardError.write("write failed: \(error)\n".data(using: .utf8)!) }
            done.signal()
        }
        done.wait()
        emit("ack \(i)")
    }
    store.close()
    emit("done")
} catch {
    FileHandle.standardError.write("error: \(error)\n".data(using: .utf8)!)
    exit(1)
}
