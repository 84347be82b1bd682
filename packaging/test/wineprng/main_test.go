package main

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"testing"
)

func TestForwarderDLL(t *testing.T) {
	b := forwarderDLL("bcryptprimitives.dll", "ProcessPrng", "advapi32.SystemFunction036")
	f, err := pe.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if f.Machine != pe.IMAGE_FILE_MACHINE_AMD64 || f.Characteristics&pe.IMAGE_FILE_DLL == 0 {
		t.Errorf("machine %#x, characteristics %#x: want an AMD64 DLL", f.Machine, f.Characteristics)
	}
	opt, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok {
		t.Fatalf("optional header %T, want PE32+", f.OptionalHeader)
	}
	dir := opt.DataDirectory[pe.IMAGE_DIRECTORY_ENTRY_EXPORT]
	sec := f.Section(".edata")
	if sec == nil || dir.VirtualAddress != sec.VirtualAddress || dir.Size != sec.VirtualSize {
		t.Fatalf("export directory %+v does not cover section .edata %+v", dir, sec)
	}
	data, err := sec.Data()
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	// cstring returns the NUL-terminated string at rva.
	cstring := func(rva uint32) string {
		s := data[rva-sec.VirtualAddress:]
		return string(s[:bytes.IndexByte(s, 0)])
	}
	if n := le.Uint32(data[20:]); n != 1 {
		t.Fatalf("NumberOfFunctions = %d, want 1", n)
	}
	name := cstring(le.Uint32(data[12:]))
	fn := cstring(le.Uint32(data[le.Uint32(data[32:])-sec.VirtualAddress:]))
	addr := le.Uint32(data[le.Uint32(data[28:])-sec.VirtualAddress:])
	if addr < dir.VirtualAddress || addr >= dir.VirtualAddress+dir.Size {
		t.Fatalf("export address %#x is outside the export directory: not a forwarder", addr)
	}
	if got := name + " " + fn + " -> " + cstring(addr); got != "bcryptprimitives.dll ProcessPrng -> advapi32.SystemFunction036" {
		t.Errorf("exports %q", got)
	}
}
