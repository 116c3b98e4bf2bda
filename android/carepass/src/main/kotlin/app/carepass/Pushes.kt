package app.carepass

/**
 * Whether a push's data map is a CarePass doorbell, so the app routes it to
 * [CarePassClient.handlePush]. It says nothing about authenticity: `handlePush` checks that.
 */
fun isCarePassPush(data: Map<String, String>): Boolean = app.carepass.ffi.isCarepassPush(data)
