package libvirt

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// isoFile is one file of an ISO image's root directory.
type isoFile struct {
	Name string
	Data []byte
}

const isoSector = 2048

// maxISOBytes bounds a cloud-init seed: it is configuration, not data.
const maxISOBytes = 8 << 20

// buildISO writes a plain ISO 9660 image (no Rock Ridge or Joliet) with the
// files in its root directory, as a cloud-init NoCloud seed needs: the
// volume identifier is label ("cidata") and the file names ("user-data",
// "meta-data") are stored upper-cased with version ";1", which Linux shows
// as the lower-case names cloud-init looks for.
func buildISO(label string, files []isoFile) ([]byte, error) {
	if len(label) == 0 || len(label) > 32 {
		return nil, fmt.Errorf("volume label %q must be 1 to 32 characters", label)
	}
	if len(files) == 0 || len(files) > 32 {
		return nil, fmt.Errorf("an ISO seed holds 1 to 32 files, got %d", len(files))
	}
	const (
		pvdLBA     = 16
		termLBA    = 17
		lPathLBA   = 18
		mPathLBA   = 19
		rootLBA    = 20
		firstLBA   = 21
		pathTblLen = 10
	)
	total := 0
	lba := uint32(firstLBA)
	extents := make([]uint32, len(files))
	names := make([]string, len(files))
	seen := map[string]bool{}
	for i, f := range files {
		n := strings.ToUpper(f.Name)
		if n == "" || len(n) > 30 || strings.ContainsAny(n, "/;\x00") {
			return nil, fmt.Errorf("file name %q must be 1 to 30 characters without '/' or ';'", f.Name)
		}
		if seen[n] {
			return nil, fmt.Errorf("duplicate file name %q", f.Name)
		}
		seen[n] = true
		names[i] = n + ";1"
		extents[i] = lba
		lba += uint32((len(f.Data) + isoSector - 1) / isoSector)
		total += len(f.Data)
	}
	if total > maxISOBytes {
		return nil, fmt.Errorf("files total %d bytes, more than %d", total, maxISOBytes)
	}
	img := make([]byte, int(lba)*isoSector)

	// Root directory: ".", ".." and the files.
	root := img[rootLBA*isoSector : (rootLBA+1)*isoSector]
	off := 0
	off += dirRecord(root[off:], rootLBA, isoSector, true, "\x00")
	off += dirRecord(root[off:], rootLBA, isoSector, true, "\x01")
	for i, f := range files {
		if off+33+len(names[i])+1 > isoSector {
			return nil, fmt.Errorf("too many files for one directory sector")
		}
		off += dirRecord(root[off:], extents[i], uint32(len(f.Data)), false, names[i])
		copy(img[int(extents[i])*isoSector:], f.Data)
	}

	// Path tables: the root only.
	for _, t := range []struct {
		lba uint32
		bo  binary.ByteOrder
	}{{lPathLBA, binary.LittleEndian}, {mPathLBA, binary.BigEndian}} {
		p := img[t.lba*isoSector:]
		p[0] = 1
		t.bo.PutUint32(p[2:6], rootLBA)
		t.bo.PutUint16(p[6:8], 1)
	}

	// Primary volume descriptor.
	pvd := img[pvdLBA*isoSector : (pvdLBA+1)*isoSector]
	pvd[0] = 1
	copy(pvd[1:6], "CD001")
	pvd[6] = 1
	pad(pvd[8:40], "LINUX")
	pad(pvd[40:72], label)
	both32(pvd[80:88], lba)
	both16(pvd[120:124], 1)
	both16(pvd[124:128], 1)
	both16(pvd[128:132], isoSector)
	both32(pvd[132:140], pathTblLen)
	binary.LittleEndian.PutUint32(pvd[140:144], lPathLBA)
	binary.BigEndian.PutUint32(pvd[148:152], mPathLBA)
	dirRecord(pvd[156:190], rootLBA, isoSector, true, "\x00")
	for _, r := range [][2]int{{190, 318}, {318, 446}, {446, 574}, {574, 702}, {702, 739}, {739, 776}, {776, 813}} {
		pad(pvd[r[0]:r[1]], "")
	}
	pad(pvd[574:702], "NOVACRON")
	for _, at := range []int{813, 830, 847, 864} {
		copy(pvd[at:at+16], "0000000000000000")
	}
	pvd[881] = 1

	// Terminator.
	term := img[termLBA*isoSector:]
	term[0] = 255
	copy(term[1:6], "CD001")
	term[6] = 1
	return img, nil
}

// dirRecord writes a directory record at b and returns its length.
func dirRecord(b []byte, extent, size uint32, dir bool, name string) int {
	n := 33 + len(name)
	if n%2 == 1 {
		n++
	}
	b[0] = byte(n)
	both32(b[2:10], extent)
	both32(b[10:18], size)
	// Recording time: 2000-01-01 00:00:00 UTC.
	copy(b[18:25], []byte{100, 1, 1, 0, 0, 0, 0})
	if dir {
		b[25] = 2
	}
	both16(b[28:32], 1)
	b[32] = byte(len(name))
	copy(b[33:], name)
	return n
}

func both32(b []byte, v uint32) {
	binary.LittleEndian.PutUint32(b[0:4], v)
	binary.BigEndian.PutUint32(b[4:8], v)
}

func both16(b []byte, v uint16) {
	binary.LittleEndian.PutUint16(b[0:2], v)
	binary.BigEndian.PutUint16(b[2:4], v)
}

func pad(b []byte, s string) {
	n := copy(b, s)
	for i := n; i < len(b); i++ {
		b[i] = ' '
	}
}
