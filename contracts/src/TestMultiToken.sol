// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title TestMultiToken
/// @notice A plain ERC-1155 contract a watched wallet holds in tests: balances
/// per token id, TransferSingle and TransferBatch, setApprovalForAll (the only
/// approval ERC-1155 has) and ERC-165 answers for ERC-1155. Only the deployer
/// can mint. No URI.
contract TestMultiToken {
    address public immutable minter;

    mapping(uint256 => mapping(address => uint256)) private _balances;
    mapping(address => mapping(address => bool)) private _operators;

    event TransferSingle(address indexed operator, address indexed from, address indexed to, uint256 id, uint256 value);
    event TransferBatch(address indexed operator, address indexed from, address indexed to, uint256[] ids, uint256[] values);
    event ApprovalForAll(address indexed account, address indexed operator, bool approved);

    constructor() {
        minter = msg.sender;
    }

    /// @notice ERC-165: ERC-165 itself (0x01ffc9a7) and ERC-1155 (0xd9b67a26).
    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == 0x01ffc9a7 || interfaceId == 0xd9b67a26;
    }

    /// @notice Creates `value` of token `id` for `to`. Deployer only.
    function mint(address to, uint256 id, uint256 value) external {
        require(msg.sender == minter, "TestMultiToken: caller is not the minter");
        require(to != address(0), "TestMultiToken: mint to the zero address");
        _balances[id][to] += value;
        emit TransferSingle(msg.sender, address(0), to, id, value);
    }

    function balanceOf(address account, uint256 id) external view returns (uint256) {
        return _balances[id][account];
    }

    function balanceOfBatch(address[] calldata accounts, uint256[] calldata ids) external view returns (uint256[] memory out) {
        require(accounts.length == ids.length, "TestMultiToken: accounts and ids differ in length");
        out = new uint256[](accounts.length);
        for (uint256 i = 0; i < accounts.length; i++) {
            out[i] = _balances[ids[i]][accounts[i]];
        }
    }

    function setApprovalForAll(address operator, bool approved) external {
        require(operator != address(0), "TestMultiToken: operator is the zero address");
        _operators[msg.sender][operator] = approved;
        emit ApprovalForAll(msg.sender, operator, approved);
    }

    function isApprovedForAll(address account, address operator) external view returns (bool) {
        return _operators[account][operator];
    }

    /// @notice Moves `value` of token `id`. A contract recipient must accept
    /// it with onERC1155Received.
    function safeTransferFrom(address from, address to, uint256 id, uint256 value, bytes calldata data) external {
        _move(from, to, id, value);
        emit TransferSingle(msg.sender, from, to, id, value);
        if (to.code.length > 0) {
            (bool ok, bytes memory ret) =
                to.call(abi.encodeWithSelector(0xf23a6e61, msg.sender, from, id, value, data));
            require(ok && ret.length == 32 && abi.decode(ret, (bytes4)) == 0xf23a6e61, "TestMultiToken: recipient refused the tokens");
        }
    }

    /// @notice Moves several token ids at once. A contract recipient must
    /// accept them with onERC1155BatchReceived.
    function safeBatchTransferFrom(address from, address to, uint256[] calldata ids, uint256[] calldata values, bytes calldata data)
        external
    {
        require(ids.length == values.length, "TestMultiToken: ids and values differ in length");
        for (uint256 i = 0; i < ids.length; i++) {
            _move(from, to, ids[i], values[i]);
        }
        emit TransferBatch(msg.sender, from, to, ids, values);
        if (to.code.length > 0) {
            (bool ok, bytes memory ret) =
                to.call(abi.encodeWithSelector(0xbc197c81, msg.sender, from, ids, values, data));
            require(ok && ret.length == 32 && abi.decode(ret, (bytes4)) == 0xbc197c81, "TestMultiToken: recipient refused the tokens");
        }
    }

    function _move(address from, address to, uint256 id, uint256 value) private {
        require(to != address(0), "TestMultiToken: transfer to the zero address");
        require(msg.sender == from || _operators[from][msg.sender], "TestMultiToken: caller is not the owner or an operator");
        uint256 balance = _balances[id][from];
        require(balance >= value, "TestMultiToken: insufficient balance");
        unchecked {
            _balances[id][from] = balance - value;
        }
        _balances[id][to] += value;
    }
}
