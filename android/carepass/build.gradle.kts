import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

// Keep in step with <jna.version>, <kotlinx.coroutines.version>, <junit.version> and
// <robolectric.version> in ../pom.xml.
val jnaVersion = "5.19.1"
val coroutinesVersion = "1.10.2"
val junitVersion = "5.14.4"
val robolectricVersion = "4.16"

android {
    namespace = "app.carepass"
    compileSdk = 35

    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
        ndk {
            // The ABIs scripts put libcarepass_ffi.so under src/main/jniLibs for.
            abiFilters += listOf("arm64-v8a", "armeabi-v7a", "x86_64")
        }
    }

    buildTypes {
        release {
            // A library does not shrink itself; consumers apply consumer-rules.pro.
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    sourceSets {
        getByName("main") {
            // Hand-written facade (src/main/kotlin, pure JVM), the Android-only adapters
            // (src/androidMain/kotlin: Keystore, Logcat, push hand-over) and the uniffi-generated
            // bindings. Maven (../pom.xml) compiles the same three against android-all.
            java.srcDirs("src/main/kotlin", "src/androidMain/kotlin", "../../bindings/generated/kotlin")
            // <abi>/libcarepass_ffi.so, filled by the native build script.
            jniLibs.srcDirs("src/main/jniLibs")
        }
        getByName("test") {
            // JUnit 5 host tests, and the Robolectric (JUnit 4) and packaging tests.
            java.srcDirs("src/test/kotlin", "src/androidUnitTest/kotlin")
        }
    }

    packaging {
        jniLibs {
            // Store .so files uncompressed and page-aligned (16 KB pages),
            // loaded straight from the APK.
            useLegacyPackaging = false
        }
    }

    testOptions {
        unitTests.all { test ->
            // Jupiter and, for the Robolectric tests, Vintage.
            test.useJUnitPlatform()
            // One JVM per test class, as Maven runs the Robolectric tests in a JVM of their own:
            // Robolectric loads the bindings in its own class loader, and the last copy loaded
            // registers its callback tables with the native library for the whole process.
            test.forkEvery = 1
            // Same defaults as the Maven host build (pom.xml): host libcarepass_ffi from cargo.
            val root = rootProject.projectDir.parentFile
            test.systemProperty("jna.library.path", File(root, "target/debug").path)
            test.systemProperty("carepass.native.dir", File(root, "target/debug").path)
            test.systemProperty("carepass.sandbox.bin", File(root, "target/debug/carepass-sandbox").path)
            test.systemProperty("carepass.vectors.dir", File(root, "tests/vectors").path)
            test.systemProperty("carepass.android.dir", rootProject.projectDir.path)
            test.systemProperty("carepass.bindings.dir", File(root, "bindings/generated/kotlin").path)
        }
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    // The AAR carries libjnidispatch.so for each Android ABI; the plain jar does not.
    implementation("net.java.dev.jna:jna:$jnaVersion@aar")
    api("org.jetbrains.kotlinx:kotlinx-coroutines-android:$coroutinesVersion")

    // Local unit tests run on the host JVM, which needs JNA's desktop natives (plain jar).
    testImplementation("net.java.dev.jna:jna:$jnaVersion")
    testImplementation(platform("org.junit:junit-bom:$junitVersion"))
    testImplementation("org.junit.jupiter:junit-jupiter")
    testRuntimeOnly("org.junit.platform:junit-platform-launcher")
    testImplementation("org.jetbrains.kotlinx:kotlinx-coroutines-test:$coroutinesVersion")
    // kotlin.test assertions on JUnit 5 (version from the Kotlin plugin).
    testImplementation(kotlin("test-junit5"))
    // Robolectric runs on JUnit 4; the Vintage engine runs it on the JUnit Platform.
    testImplementation("org.robolectric:robolectric:$robolectricVersion")
    testImplementation("junit:junit:4.13.2")
    testRuntimeOnly("org.junit.vintage:junit-vintage-engine")
}

// libcarepass_ffi.so for each ABI in src/main/jniLibs, built by ../build-native.sh with cargo-ndk
// (16 KB pages, checked with readelf) before the native libraries are merged into the AAR.
// Needs ANDROID_NDK_HOME and cargo-ndk; --require-ndk makes it fail rather than skip without.
val buildNative by tasks.registering(Exec::class) {
    description = "Builds libcarepass_ffi.so for arm64-v8a, armeabi-v7a and x86_64 into src/main/jniLibs."
    workingDir = rootProject.projectDir
    commandLine("./build-native.sh", "--require-ndk")
    inputs.files(fileTree(rootProject.projectDir.parentFile) {
        include("Cargo.lock", "Cargo.toml", ".cargo/config.toml", "rust-core/**", "bindings/src/**", "bindings/Cargo.toml")
    })
    outputs.dir("src/main/jniLibs")
}

tasks.configureEach {
    if (name.startsWith("merge") && name.endsWith("JniLibFolders")) {
        dependsOn(buildNative)
    }
}
