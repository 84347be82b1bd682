// Command wineprng writes bcryptprimitives.dll for the package tests: a
// PE32+ (x64) DLL without code whose only export, ProcessPrng, forwards to
// advapi32.SystemFunction036 (RtlGenRandom).
//
// The Go runtime (since Go 1.22) needs ProcessPrng from bcryptprimitives.dll
// at start-up; Wine 8.0, Debian 12's, does not have that DLL, so a Go
// windows/amd64 program dies there with "bcryptprimitives.dll not found".
// With this file in the Wine prefix's system32 folder, `wine drago.exe` runs.
// It is test scaffolding for Wine only: Windows 10 and later have the real DLL.
//
// Usage: go run ./packaging/test/wineprng OUT.dll
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: wineprng OUT.dll")
		os.Exit(2)
	}
	if err := os.WriteFile(os.Args[1], forwarderDLL("bcryptprimitives.dll", "ProcessPrng", "advapi32.SystemFunction036"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "wineprng:", err)
		os.Exit(1)
	}
}

// Layout: headers in the first 0x200 bytes of the file, one section .edata
// at RVA 0x1000 (file offset 0x200) holding the export directory.
const (
	fileAlign    = 0x200
	sectionAlign = 0x1000
	edataRVA     = 0x1000
)

// forwarderDLL returns a DLL named dll whose one export, name, forwards to
// target ("module.function"). An export whose address lies inside the export
// directory is a forwarder: the loader resolves target instead.
func forwarderDLL(dll, name, target string) []byte {
	le := binary.LittleEndian
	// Export data: directory (40 bytes), address table (4), name pointers
	// (4), ordinals (2), then the strings.
	const (
		dirSize = 40
		eat     = edataRVA + dirSize
		npt     = eat + 4
		ords    = npt + 4
		strs    = ords + 2
	)
	var s bytes.Buffer
	str := func(v string) uint32 {
		rva := uint32(strs + s.Len())
		s.WriteString(v)
		s.WriteByte(0)
		return rva
	}
	dllRVA, nameRVA, targetRVA := str(dll), str(name), str(target)

	edata := make([]byte, strs-edataRVA)
	le.PutUint32(edata[12:], dllRVA) // Name
	le.PutUint32(edata[16:], 1)      // Base (first ordinal)
	le.PutUint32(edata[20:], 1)      // NumberOfFunctions
	le.PutUint32(edata[24:], 1)      // NumberOfNames
	le.PutUint32(edata[28:], eat)    // AddressOfFunctions
	le.PutUint32(edata[32:], npt)    // AddressOfNames
	le.PutUint32(edata[36:], ords)   // AddressOfNameOrdinals
	le.PutUint32(edata[eat-edataRVA:], targetRVA)
	le.PutUint32(edata[npt-edataRVA:], nameRVA)
	le.PutUint16(edata[ords-edataRVA:], 0)
	edata = append(edata, s.Bytes()...)
	rawSize := (len(edata) + fileAlign - 1) / fileAlign * fileAlign
	virtSize := (len(edata) + sectionAlign - 1) / sectionAlign * sectionAlign

	out := make([]byte, fileAlign+rawSize)
	// DOS header: "MZ" and the offset of the PE header.
	copy(out, "MZ")
	le.PutUint32(out[0x3c:], 0x40)
	copy(out[0x40:], "PE\x00\x00")
	// COFF file header.
	coff := out[0x44:]
	le.PutUint16(coff[0:], 0x8664)  // Machine: AMD64
	le.PutUint16(coff[2:], 1)       // NumberOfSections
	le.PutUint16(coff[16:], 240)    // SizeOfOptionalHeader (PE32+)
	le.PutUint16(coff[18:], 0x2022) // EXECUTABLE_IMAGE | LARGE_ADDRESS_AWARE | DLL
	// Optional header, PE32+.
	opt := out[0x58:]
	le.PutUint16(opt[0:], 0x20b)                      // Magic
	le.PutUint32(opt[8:], uint32(rawSize))            // SizeOfInitializedData
	le.PutUint32(opt[20:], edataRVA)                  // BaseOfCode
	le.PutUint64(opt[24:], 0x180000000)               // ImageBase
	le.PutUint32(opt[32:], sectionAlign)              // SectionAlignment
	le.PutUint32(opt[36:], fileAlign)                 // FileAlignment
	le.PutUint16(opt[40:], 6)                         // MajorOperatingSystemVersion
	le.PutUint16(opt[48:], 6)                         // MajorSubsystemVersion
	le.PutUint32(opt[56:], uint32(edataRVA+virtSize)) // SizeOfImage
	le.PutUint32(opt[60:], fileAlign)                 // SizeOfHeaders
	le.PutUint16(opt[68:], 3)                         // Subsystem: console
	le.PutUint16(opt[70:], 0x0160)                    // DllCharacteristics: high-entropy VA, dynamic base, NX
	le.PutUint64(opt[72:], 0x100000)                  // SizeOfStackReserve
	le.PutUint64(opt[80:], 0x1000)                    // SizeOfStackCommit
	le.PutUint64(opt[88:], 0x100000)                  // SizeOfHeapReserve
	le.PutUint64(opt[96:], 0x1000)                    // SizeOfHeapCommit
	le.PutUint32(opt[108:], 16)                       // NumberOfRvaAndSizes
	le.PutUint32(opt[112:], edataRVA)                 // DataDirectory[export].VirtualAddress
	le.PutUint32(opt[116:], uint32(len(edata)))       // DataDirectory[export].Size
	// Section header.
	sec := out[0x58+240:]
	copy(sec, ".edata")
	le.PutUint32(sec[8:], uint32(len(edata))) // VirtualSize
	le.PutUint32(sec[12:], edataRVA)          // VirtualAddress
	le.PutUint32(sec[16:], uint32(rawSize))   // SizeOfRawData
	le.PutUint32(sec[20:], fileAlign)         // PointerToRawData
	le.PutUint32(sec[36:], 0x40000040)        // INITIALIZED_DATA | MEM_READ
	copy(out[fileAlign:], edata)
	return out
}
