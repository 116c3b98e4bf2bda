// Drawing an e-voucher code: its modules one by one, or the whole code as SVG.

import Foundation
import CarePassFFI

extension VoucherCode {
    /// Whether the module at column `x`, row `y` is dark (`qrModules` is row-major,
    /// `qrSize` × `qrSize`, without the quiet zone: draw four light modules around).
    /// Modules outside the code are light.
    public func isDark(x: Int, y: Int) -> Bool {
        let size = Int(qrSize)
        guard (0..<size).contains(x), (0..<size).contains(y) else { return false }
        return qrModules[qrModules.startIndex + y * size + x] != 0
    }

    /// The code as an SVG image (error correction M, quiet zone included), `modulePx` pixels
    /// per module (clamped to 1...64 by the core).
    public func svg(modulePx: UInt32 = 4) throws -> String {
        try CarePassFFI.qrSvg(payload: payload, modulePx: modulePx)
    }
}
