// Opens a store in a temporary directory, writes a key, reads it back, closes the store, then
// reopens it to read the key again from disk.
import Foundation
import StrataStore

let directory = FileManager.default.temporaryDirectory.appendingPathComponent("strata-example-\(UUID().uuidString)").path
defer { try? FileManager.default.removeItem(atPath: directory) }

let configuration = StoreConfiguration(memoryBudget: 16 << 20, diskBudget: 64 << 20)
let key = Array("greeting".utf8)
let value = Array("hello from an embedded StrataStore".utf8)

let store = try TieredStore(path: directory, configuration: configuration)
try store.set(key, value)
let read = store.get(key)
store.close()  // commits and syncs every queued write

let reopened = try TieredStore(path: directory, configuration: configuration)
let reread = reopened.get(key)
reopened.close()

guard read == value, reread == value else {
    print("error: read back \(read.map { String(decoding: $0, as: UTF8.self) } ?? "nothing"), after reopening \(reread.map { String(decoding: $0, as: UTF8.self) } ?? "nothing")")
    exit(1)
}
print(String(decoding: reread!, as: UTF8.self))
