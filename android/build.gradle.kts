// Plugin versions for every module; each module applies what it needs.
// AGP 8.5.1+ stores uncompressed native libraries 16 KB-aligned.
plugins {
    id("com.android.library") version "8.7.3" apply false
    // Keep in step with <kotlin.version> in pom.xml.
    id("org.jetbrains.kotlin.android") version "2.3.21" apply false
}
