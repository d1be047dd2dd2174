package procfs

import (
	"fmt"
	"strings"
)

// swapsHeader is the kernel's first line of /proc/swaps.
const swapsHeader = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"

// renderSwaps shows the swap the container may use as one device named
// "none" of type "virtual", in the kernel's column layout; none when its
// SwapTotal is 0. The kernel pads the type to two tab stops ("partition\t",
// "file\t\t"), so Size starts under the header's Size; "virtual" needs two
// tabs as "file" does.
func renderSwaps(h *Host, c *Container) ([]byte, error) {
	m, _, err := h.memory(c)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString(swapsHeader)
	if m.swapTotal > 0 {
		size, used := m.swapTotal>>10, (m.swapTotal-m.swapFree)>>10
		fmt.Fprintf(&b, "%-40s%s\t\t%d\t%s%d\t%s%d\n", "none", "virtual", size, tab(size), used, tab(used), -1)
	}
	return []byte(b.String()), nil
}

// tab is the kernel's extra tab after a short number in /proc/swaps.
func tab(v uint64) string {
	if v < 10000000 {
		return "\t"
	}
	return ""
}
