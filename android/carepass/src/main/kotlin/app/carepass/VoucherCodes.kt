package app.carepass

/**
 * This code as an SVG image (error correction M, quiet zone included), [modulePx] pixels per
 * module (clamped to 1..64 by the core).
 *
 * @throws IllegalArgumentException if [modulePx] is not positive.
 */
fun VoucherCode.toSvg(modulePx: Int = 4): String {
    require(modulePx > 0) { "modulePx must be positive: $modulePx" }
    return app.carepass.ffi.qrSvg(payload, modulePx.toUInt())
}

/**
 * Whether the module at column [x], row [y] of [VoucherCode.qrModules] is dark. Modules
 * outside the code (the quiet zone, four modules wide, that a drawing adds around) are light.
 */
fun VoucherCode.isDark(x: Int, y: Int): Boolean {
    val size = qrSize.toInt()
    if (x !in 0 until size || y !in 0 until size) return false
    return qrModules[y * size + x].toInt() != 0
}
