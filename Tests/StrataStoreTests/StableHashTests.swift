import Testing

@testable import StrataStore

/// Vectors computed with the reference xxHash (python-xxhash `xxh64_intdigest`).
@Suite struct StableHashTests {
    @Test(arguments: [
        ([UInt8](), UInt64(0xef46_db37_51d8_e999), UInt64(0x98b1_582b_0977_e704)),
        (Array("a".utf8), 0xd24e_c4f1_a98c_6e5b, 0x88e4_fe59_adf7_b0cc),
        (Array("abc".utf8), 0x44bc_2cf5_ad77_0999, 0x13c1_d910_7027_70e6),
        (Array("hello world".utf8), 0x45ab_6734_b21e_6968, 0x69c2_b68f_9d93_52a1),
        ((0..<32).map { UInt8($0) }, 0xcbf5_9c51_16ff_32b4, 0x8809_e1ca_0be2_5072),
        ((0..<100).map { UInt8($0) }, 0x6ac1_e580_3216_6597, 0x819d_2b72_6001_d507),
        (Array(String(repeating: "strata", count: 10).utf8), 0x7969_eadf_c05d_a304, 0xf984_d052_2db4_a8f4),
    ])
    func referenceVectors(input: [UInt8], seed0: UInt64, seed42: UInt64) {
        #expect(StableHash.hash(input) == seed0)
        #expect(StableHash.hash(input, seed: 42) == seed42)
    }
}
