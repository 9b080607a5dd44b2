// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title TestNFT
/// @notice A plain ERC-721 collection a watched wallet holds in tests: the
/// standard events (Transfer, Approval with the token id indexed,
/// ApprovalForAll) and ERC-165 answers for ERC-721. Only the deployer can
/// mint. No metadata.
contract TestNFT {
    string public name;
    string public symbol;
    address public immutable minter;

    mapping(uint256 => address) private _owners;
    mapping(address => uint256) private _balances;
    mapping(uint256 => address) private _approved;
    mapping(address => mapping(address => bool)) private _operators;

    event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);
    event Approval(address indexed owner, address indexed approved, uint256 indexed tokenId);
    event ApprovalForAll(address indexed owner, address indexed operator, bool approved);

    constructor(string memory name_, string memory symbol_) {
        name = name_;
        symbol = symbol_;
        minter = msg.sender;
    }

    /// @notice ERC-165: ERC-165 itself (0x01ffc9a7) and ERC-721 (0x80ac58cd).
    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == 0x01ffc9a7 || interfaceId == 0x80ac58cd;
    }

    /// @notice Creates token `tokenId` for `to`. Deployer only.
    function mint(address to, uint256 tokenId) external {
        require(msg.sender == minter, "TestNFT: caller is not the minter");
        require(to != address(0), "TestNFT: mint to the zero address");
        require(_owners[tokenId] == address(0), "TestNFT: token already minted");
        _owners[tokenId] = to;
        _balances[to] += 1;
        emit Transfer(address(0), to, tokenId);
    }

    function balanceOf(address owner) external view returns (uint256) {
        require(owner != address(0), "TestNFT: balance of the zero address");
        return _balances[owner];
    }

    function ownerOf(uint256 tokenId) public view returns (address) {
        address owner = _owners[tokenId];
        require(owner != address(0), "TestNFT: no such token");
        return owner;
    }

    /// @notice Approves `to` for `tokenId` (the zero address clears the
    /// approval). The owner or one of its operators may call it.
    function approve(address to, uint256 tokenId) external {
        address owner = ownerOf(tokenId);
        require(msg.sender == owner || _operators[owner][msg.sender], "TestNFT: caller is not the owner or an operator");
        _approved[tokenId] = to;
        emit Approval(owner, to, tokenId);
    }

    function getApproved(uint256 tokenId) external view returns (address) {
        ownerOf(tokenId);
        return _approved[tokenId];
    }

    function setApprovalForAll(address operator, bool approved) external {
        require(operator != address(0), "TestNFT: operator is the zero address");
        _operators[msg.sender][operator] = approved;
        emit ApprovalForAll(msg.sender, operator, approved);
    }

    function isApprovedForAll(address owner, address operator) external view returns (bool) {
        return _operators[owner][operator];
    }

    /// @notice Moves `tokenId` from `from` to `to`. Clears the token's
    /// approval without logging an Approval, as OpenZeppelin 5 does.
    function transferFrom(address from, address to, uint256 tokenId) public {
        address owner = ownerOf(tokenId);
        require(owner == from, "TestNFT: from is not the owner");
        require(to != address(0), "TestNFT: transfer to the zero address");
        require(
            msg.sender == owner || _approved[tokenId] == msg.sender || _operators[owner][msg.sender],
            "TestNFT: caller is not the owner, approved or an operator"
        );
        delete _approved[tokenId];
        _balances[from] -= 1;
        _balances[to] += 1;
        _owners[tokenId] = to;
        emit Transfer(from, to, tokenId);
    }

    function safeTransferFrom(address from, address to, uint256 tokenId) external {
        safeTransferFrom(from, to, tokenId, "");
    }

    /// @notice transferFrom, then a contract recipient must accept the token
    /// with onERC721Received.
    function safeTransferFrom(address from, address to, uint256 tokenId, bytes memory data) public {
        transferFrom(from, to, tokenId);
        if (to.code.length > 0) {
            (bool ok, bytes memory ret) =
                to.call(abi.encodeWithSelector(0x150b7a02, msg.sender, from, tokenId, data));
            require(ok && ret.length == 32 && abi.decode(ret, (bytes4)) == 0x150b7a02, "TestNFT: recipient refused the token");
        }
    }
}
