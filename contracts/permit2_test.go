package contracts

import (
	"bytes"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// TestPermit2Interface: the stand-in has Permit2's real selectors and event
// topics (the Permit topic is the one of real mainnet logs).
func TestPermit2Interface(t *testing.T) {
	p := mustLoad(t, NamePermit2)
	checks := []struct {
		what string
		got  []byte
		want string
	}{
		{"approve selector", p.ABI.Methods["approve"].ID, "0x87517c45"},
		{"permit selector", p.ABI.Methods["permit"].ID, "0x2b67b570"},
		{"allowance selector", p.ABI.Methods["allowance"].ID, "0x927da105"},
		{"Approval topic", p.ABI.Events["Approval"].ID.Bytes(), "0xda9fa7c1b00402c17d0161b249b1ab8bbec047c5a52207b9c112deffd817036b"},
		{"Permit topic", p.ABI.Events["Permit"].ID.Bytes(), "0xc6a377bfc4eb120024a8ac08eef205be16b817020812c73223e81d1bdb9708ec"},
		{"address", Permit2.Bytes(), "0x000000000022d473030f116ddee9f6b43ac78ba3"},
	}
	for _, c := range checks {
		if got := "0x" + common.Bytes2Hex(c.got); got != c.want {
			t.Errorf("%s = %s, want %s", c.what, got, c.want)
		}
	}
}

func TestPermit2StandIn(t *testing.T) {
	owner, relayer, spender, stranger := newAccount(t), newAccount(t), newAccount(t), newAccount(t)
	c := newChain(t, owner, relayer, stranger)
	p := mustLoad(t, NamePermit2)
	token := common.HexToAddress("0x6982508145454ce325ddbe47a25d4ec3d2311933")
	unlimited := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 160), big.NewInt(1))

	code, err := c.client.CodeAt(c.ctx, Permit2, nil)
	if err != nil || !bytes.Equal(code, p.DeployedBytecode) {
		t.Fatalf("no stand-in code at %s (%v)", Permit2, err)
	}

	// approve: the caller's allowance, and the real Approval event.
	r := c.send(owner, Permit2, nil, p, "approve", token, spender.addr, big.NewInt(1_000_000), big.NewInt(1_900_000_000))
	l := oneLog(t, r, Permit2, p, "Approval")
	if l.Topics[1] != addrTopic(owner.addr) || l.Topics[2] != addrTopic(token) || l.Topics[3] != addrTopic(spender.addr) {
		t.Fatalf("Approval topics %v", l.Topics)
	}
	if got, err := p.ABI.Unpack("Approval", l.Data); err != nil || got[0].(*big.Int).Int64() != 1_000_000 || got[1].(*big.Int).Int64() != 1_900_000_000 {
		t.Fatalf("Approval data %v (%v)", got, err)
	}

	allowance := func(o, s common.Address) (amount, expiration, nonce int64) {
		t.Helper()
		to := Permit2
		out, err := c.client.CallContract(c.ctx, ethereum.CallMsg{To: &to, Data: mustPack(t, p, "allowance", o, token, s)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.ABI.Unpack("allowance", out)
		if err != nil {
			t.Fatal(err)
		}
		return res[0].(*big.Int).Int64(), res[1].(*big.Int).Int64(), res[2].(*big.Int).Int64()
	}
	if a, e, n := allowance(owner.addr, spender.addr); a != 1_000_000 || e != 1_900_000_000 || n != 0 {
		t.Fatalf("allowance after approve: %d, %d, nonce %d", a, e, n)
	}

	// permit: the owner signs, a relayer submits.
	permit := PermitSingle{Token: token, Amount: unlimited, Expiration: 1_900_000_000, Nonce: 0, Spender: spender.addr, SigDeadline: big.NewInt(4_000_000_000)}
	sig, err := permit.Sign(owner.key, c.chainID)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := crypto.SigToPub(permit.Digest(c.chainID).Bytes(), append(sig[:64:64], sig[64]-27)); err != nil || crypto.PubkeyToAddress(*got) != owner.addr {
		t.Fatalf("signature does not recover the owner (%v)", err)
	}
	r = c.send(relayer, Permit2, nil, p, "permit", owner.addr, permit.Arg(), sig)
	l = oneLog(t, r, Permit2, p, "Permit")
	if l.Topics[1] != addrTopic(owner.addr) || l.Topics[2] != addrTopic(token) || l.Topics[3] != addrTopic(spender.addr) {
		t.Fatalf("Permit topics %v", l.Topics)
	}
	if got, err := p.ABI.Unpack("Permit", l.Data); err != nil || got[0].(*big.Int).Cmp(unlimited) != 0 || got[2].(*big.Int).Int64() != 0 {
		t.Fatalf("Permit data %v (%v)", got, err)
	}
	if _, e, n := allowance(owner.addr, spender.addr); e != 1_900_000_000 || n != 1 {
		t.Fatalf("allowance after permit: expiration %d, nonce %d", e, n)
	}

	// The same permit again (its nonce is used), and one signed by someone
	// else, revert.
	c.sendFailing(relayer, Permit2, nil, p, "permit", owner.addr, permit.Arg(), sig)
	permit.Nonce = 1
	forged, err := permit.Sign(stranger.key, c.chainID)
	if err != nil {
		t.Fatal(err)
	}
	c.sendFailing(relayer, Permit2, nil, p, "permit", owner.addr, permit.Arg(), forged)
}

// TestNFTAndMultiTokenApprovals: an approved address and an operator may
// move the owner's tokens; a stranger may not; both answer ERC-165.
func TestNFTAndMultiTokenApprovals(t *testing.T) {
	deployer, owner, spender, operator := newAccount(t), newAccount(t), newAccount(t), newAccount(t)
	c := newChain(t, deployer, owner, spender, operator)
	nft, multi := mustLoad(t, NameTestNFT), mustLoad(t, NameTestMultiToken)
	nftAddr, _ := c.deploy(deployer, NameTestNFT, "Test Apes", "TAPE")
	multiAddr, _ := c.deploy(deployer, NameTestMultiToken)

	for _, tt := range []struct {
		art  *Artifact
		addr common.Address
		id   [4]byte
		want bool
	}{
		{nft, nftAddr, [4]byte{0x80, 0xac, 0x58, 0xcd}, true},
		{nft, nftAddr, [4]byte{0xd9, 0xb6, 0x7a, 0x26}, false},
		{multi, multiAddr, [4]byte{0xd9, 0xb6, 0x7a, 0x26}, true},
		{multi, multiAddr, [4]byte{0x80, 0xac, 0x58, 0xcd}, false},
		{multi, multiAddr, [4]byte{0x01, 0xff, 0xc9, 0xa7}, true},
	} {
		if got := c.call(tt.addr, tt.art, "supportsInterface", tt.id).(bool); got != tt.want {
			t.Errorf("%s.supportsInterface(%x) = %v", tt.art.Name, tt.id, got)
		}
	}

	c.send(deployer, nftAddr, nil, nft, "mint", owner.addr, big.NewInt(7))
	c.send(deployer, nftAddr, nil, nft, "mint", owner.addr, big.NewInt(8))
	r := c.send(owner, nftAddr, nil, nft, "approve", spender.addr, big.NewInt(7))
	l := oneLog(t, r, nftAddr, nft, "Approval")
	if len(l.Topics) != 4 || l.Topics[2] != addrTopic(spender.addr) || l.Topics[3] != common.BigToHash(big.NewInt(7)) || len(l.Data) != 0 {
		t.Fatalf("ERC-721 Approval log: topics %v, data %x", l.Topics, l.Data)
	}
	c.sendFailing(spender, nftAddr, nil, nft, "transferFrom", owner.addr, spender.addr, big.NewInt(8))
	c.send(spender, nftAddr, nil, nft, "transferFrom", owner.addr, spender.addr, big.NewInt(7))
	if got := c.call(nftAddr, nft, "getApproved", big.NewInt(7)).(common.Address); got != (common.Address{}) {
		t.Fatalf("approval survived the transfer: %s", got)
	}
	c.send(owner, nftAddr, nil, nft, "setApprovalForAll", operator.addr, true)
	c.send(operator, nftAddr, nil, nft, "transferFrom", owner.addr, operator.addr, big.NewInt(8))

	c.send(deployer, multiAddr, nil, multi, "mint", owner.addr, big.NewInt(1), big.NewInt(100))
	c.sendFailing(operator, multiAddr, nil, multi, "safeTransferFrom", owner.addr, operator.addr, big.NewInt(1), big.NewInt(10), []byte{})
	r = c.send(owner, multiAddr, nil, multi, "setApprovalForAll", operator.addr, true)
	l = oneLog(t, r, multiAddr, multi, "ApprovalForAll")
	if l.Topics[1] != addrTopic(owner.addr) || l.Topics[2] != addrTopic(operator.addr) || new(big.Int).SetBytes(l.Data).Int64() != 1 {
		t.Fatalf("ApprovalForAll log: topics %v, data %x", l.Topics, l.Data)
	}
	c.send(operator, multiAddr, nil, multi, "safeTransferFrom", owner.addr, operator.addr, big.NewInt(1), big.NewInt(10), []byte{})
	if got := c.call(multiAddr, multi, "balanceOf", operator.addr, big.NewInt(1)).(*big.Int); got.Int64() != 10 {
		t.Fatalf("operator holds %s of token 1, want 10", got)
	}
}
