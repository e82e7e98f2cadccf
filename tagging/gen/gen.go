// Package gen generates synthetic behaviour events shaped like the Taobao UserBehavior
// data set (user_id,item_id,category_id,behavior_type,timestamp) with realistic skew:
// users, items and categories are Zipf-distributed, each item belongs to one category,
// behaviours are mostly page views (pv ≈ 89 %, cart ≈ 5.5 %, fav ≈ 3 %, buy ≈ 2.5 %), and
// times follow a day/night cycle. The same seed gives the same events. It feeds the
// tagging benchmark and `tagpipe gen`.
package gen

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// Options shape the generated events. Zero values take DefaultOptions' values.
type Options struct {
	Users, Items, Categories uint64
	// S is the Zipf exponent (> 1); larger is more skewed.
	S float64
	// Start is the first day (UTC midnight); events spread over Days days.
	Start time.Time
	Days  int
	Seed  uint64
}

// DefaultOptions: 1M users, 4M items, 9 000 categories (Taobao's orders of magnitude),
// 30 days from 2024-05-01.
func DefaultOptions() Options {
	return Options{Users: 1_000_000, Items: 4_000_000, Categories: 9_000, S: 1.1,
		Start: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), Days: 30, Seed: 1}
}

// Event is one generated behaviour.
type Event struct {
	User, Item, Category uint64
	Behavior             string
	Time                 time.Time
}

// Generator produces events; not safe for concurrent use.
type Generator struct {
	o                  Options
	r                  *rand.Rand
	users, items, cats *rand.Zipf
	hourCDF            [24]float64
}

// New returns a generator.
func New(o Options) *Generator {
	d := DefaultOptions()
	if o.Users == 0 {
		o.Users = d.Users
	}
	if o.Items == 0 {
		o.Items = d.Items
	}
	if o.Categories == 0 {
		o.Categories = d.Categories
	}
	if o.S <= 1 {
		o.S = d.S
	}
	if o.Start.IsZero() {
		o.Start = d.Start
	}
	if o.Days <= 0 {
		o.Days = d.Days
	}
	r := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	g := &Generator{o: o, r: r,
		users: rand.NewZipf(r, o.S, 1, o.Users-1),
		items: rand.NewZipf(r, o.S, 1, o.Items-1),
		cats:  rand.NewZipf(r, o.S, 1, o.Categories-1),
	}
	// Day/night cycle: activity peaks in the evening (UTC+8 shoppers, 20:00 local).
	var sum float64
	for h := range 24 {
		local := float64((h + 8) % 24)
		sum += 1 + 0.8*math.Cos((local-20)/24*2*math.Pi)
		g.hourCDF[h] = sum
	}
	for h := range 24 {
		g.hourCDF[h] /= sum
	}
	return g
}

// scatter maps a Zipf rank to an id in [1, n] so that popular ids are not simply 1, 2,
// 3: multiplication by a prime that does not divide n is a bijection modulo n.
func scatter(rank, n uint64) uint64 {
	const step = 2654435761
	return (rank*step)%n + 1
}

// CategoryOf is the fixed category of an item.
func (g *Generator) CategoryOf(item uint64) uint64 {
	// A per-item hash chooses a Zipf-ish category: low categories hold more items.
	h := item * 0x9e3779b97f4a7c15
	h ^= h >> 29
	u := float64(h>>11) / (1 << 53)
	return uint64(math.Pow(u, 2.5)*float64(g.o.Categories)) + 1
}

// Next returns one event on day (0-based) of the range.
func (g *Generator) Next(day int) Event {
	u := scatter(g.users.Uint64(), g.o.Users)
	it := scatter(g.items.Uint64(), g.o.Items)
	var b string
	switch x := g.r.Float64(); {
	case x < 0.893:
		b = "pv"
	case x < 0.948:
		b = "cart"
	case x < 0.977:
		b = "fav"
	default:
		b = "buy"
	}
	x := g.r.Float64()
	h := 0
	for h < 23 && g.hourCDF[h] < x {
		h++
	}
	t := g.o.Start.AddDate(0, 0, day).Add(time.Duration(h)*time.Hour + time.Duration(g.r.Int64N(int64(time.Hour/time.Second)))*time.Second)
	return Event{User: u, Item: it, Category: g.CategoryOf(it), Behavior: b, Time: t}
}

// NextAny returns one event on a random day of the range.
func (g *Generator) NextAny() Event { return g.Next(g.r.IntN(g.o.Days)) }

// WriteTaobao writes n events as Taobao UserBehavior lines (no header), spread over
// the days of the range.
func (g *Generator) WriteTaobao(w io.Writer, n int64) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	buf := make([]byte, 0, 64)
	for range n {
		e := g.NextAny()
		buf = buf[:0]
		buf = strconv.AppendUint(buf, e.User, 10)
		buf = append(buf, ',')
		buf = strconv.AppendUint(buf, e.Item, 10)
		buf = append(buf, ',')
		buf = strconv.AppendUint(buf, e.Category, 10)
		buf = append(buf, ',')
		buf = append(buf, e.Behavior...)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, e.Time.Unix(), 10)
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return fmt.Errorf("cannot write events: %w", err)
		}
	}
	return bw.Flush()
}
